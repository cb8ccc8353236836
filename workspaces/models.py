"""Workspaces, who may do what in them, the clusters they hold, and the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from guardian.shortcuts import assign_perm, remove_perm

from palette_site.encryption import EncryptedTextField
from palette_site.model_fields import user_field

from .access import (
    AuditEventQuerySet,
    ClusterQuerySet,
    MembershipQuerySet,
    WorkspaceQuerySet,
)
from .kube import HealthReport
from .roles import ROLE_ACTIONS, Action, Role, codename, object_permissions

dns_label = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$",
    "Use 1 to 40 lower-case letters, digits and dashes, starting and ending with a "
    "letter or digit (it becomes part of backup names).",
)


class Workspace(models.Model):
    """A group of clusters shared by a team; roles are granted per workspace."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = user_field()

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = object_permissions("workspace")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("workspace_detail", args=[self.slug])

    @transaction.atomic
    def grant(self, role: str, *, user=None, group: Group | None = None) -> Membership:
        """Give a user or a team a role here, replacing any role they had.

        The Membership row and the guardian permissions change in one
        transaction, so a page never shows a role whose permissions are missing.
        """
        if (user is None) == (group is None):
            raise ValueError("grant() takes exactly one of user= or group=")
        membership, _ = Membership.objects.update_or_create(
            workspace=self, user=user, group=group, defaults={"role": role}
        )
        holder = user or group
        wanted = set(ROLE_ACTIONS[role])
        for action in Action:
            perm = codename(action.value, "workspace")
            if action in wanted:
                assign_perm(perm, holder, self)
            else:
                remove_perm(perm, holder, self)
        return membership

    @transaction.atomic
    def revoke(self, membership: Membership) -> None:
        """Take a user's or team's role away, with every permission it gave."""
        holder = membership.user or membership.group
        for action in Action:
            remove_perm(codename(action.value, "workspace"), holder, self)
        membership.delete()


class Membership(models.Model):
    """The role a user or a team (Django group) holds in a workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "role", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False)
                ),
                name="membership_user_xor_group",
            ),
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user"),
            models.UniqueConstraint(fields=["workspace", "group"], name="membership_unique_group"),
        ]

    def __str__(self) -> str:
        return f"{self.holder_name} is {self.get_role_display()} of {self.workspace}"

    @property
    def holder_name(self) -> str:
        return f"team {self.group.name}" if self.group_id else self.user.get_username()


class WorkspaceUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE)


class WorkspaceGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Workspace, on_delete=models.CASCADE)


class Cluster(models.Model):
    """A Kubernetes cluster the console can reach with a stored kubeconfig."""

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Not checked yet"
        HEALTHY = "healthy", "Healthy"
        UNREACHABLE = "unreachable", "Unreachable"

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=40, unique=True, validators=[dns_label])
    description = models.TextField(blank=True)
    kubeconfig = EncryptedTextField(help_text="A self-contained kubeconfig (certificates inline).")
    etcd_endpoint = models.CharField(
        max_length=300, blank=True, help_text="For etcd snapshots, e.g. https://10.0.0.5:2379"
    )
    etcd_ca = models.TextField(blank=True, help_text="PEM CA certificate of etcd (public).")
    etcd_cert = models.TextField(blank=True, help_text="PEM client certificate (public).")
    etcd_key = EncryptedTextField(blank=True, help_text="PEM client private key.")
    # Which etcd the endpoint is (workspaces/etcd_identity.py): read at registration,
    # checked before every snapshot and etcd restore.
    etcd_cluster_id = models.CharField(
        max_length=32, blank=True, help_text="etcd's cluster ID (hex), as read at registration"
    )
    etcd_members = models.JSONField(
        default=list, blank=True, help_text="etcd's members, as read at registration"
    )

    health = models.CharField(max_length=20, choices=Health.choices, default=Health.UNKNOWN)
    server_version = models.CharField(max_length=50, blank=True)
    node_count = models.PositiveIntegerField(null=True, blank=True)
    namespace_count = models.PositiveIntegerField(null=True, blank=True)
    namespaces = models.JSONField(default=list, blank=True, help_text="As of the last check")
    health_message = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = user_field()

    objects = ClusterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = object_permissions("cluster")
        # One etcd, one cluster (the endpoint's uniqueness is checked in clean(),
        # on normalized URLs).
        constraints = [
            models.UniqueConstraint(
                fields=["etcd_cluster_id"],
                condition=~models.Q(etcd_cluster_id=""),
                name="unique_cluster_etcd_cluster_id",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cluster_detail", args=[self.name])

    def clean(self) -> None:
        """The etcd endpoint's rules (workspaces/etcd_identity.py), for every path in."""
        from django.core.exceptions import ValidationError

        from .etcd_identity import EtcdIdentityError, check_endpoint

        super().clean()
        try:
            check_endpoint(self)
        except EtcdIdentityError as exc:
            raise ValidationError({"etcd_endpoint": str(exc)}) from None

    @property
    def has_etcd(self) -> bool:
        return bool(self.etcd_endpoint)

    @property
    def api_server(self) -> str:
        from .kube import KubeconfigError, server_of

        try:
            return server_of(self.kubeconfig)
        except KubeconfigError:
            return ""

    def check_health(self) -> HealthReport:
        """Connect to the cluster now and store what was found (or why it failed)."""
        from .kube import check_health

        return self.record_health(check_health(self.kubeconfig))

    def record_health(self, health: HealthReport) -> HealthReport:
        self.health = self.Health.HEALTHY if health.reachable else self.Health.UNREACHABLE
        self.health_message = health.message
        self.last_checked_at = timezone.now()
        if health.reachable:
            self.server_version = health.version
            self.node_count = health.node_count
            self.namespaces = health.namespaces
            self.namespace_count = len(health.namespaces)
        self.save(
            update_fields=[
                "health",
                "health_message",
                "last_checked_at",
                "server_version",
                "node_count",
                "namespaces",
                "namespace_count",
            ]
        )
        return health


class ClusterUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Cluster, on_delete=models.CASCADE)


class ClusterGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Cluster, on_delete=models.CASCADE)


class AuditEvent(models.Model):
    """Who did what to which object, and when. Rows are only ever added.

    The actor's and the object's names are copied in, so the trail still reads
    correctly after the user or the object is deleted.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = user_field()
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200)
    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    # The cluster the event is about (the cluster itself, or its backup, restore,
    # snapshot, schedule, policy), so a single-cluster grantee reads only its events.
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["workspace", "-at"])]

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return f"{who} {self.action} {self.object_type} {self.object_repr}"

    @property
    def detail_pairs(self) -> list[tuple[str, object]]:
        """The detail as (key, value) pairs: a template's ``detail.items`` would
        read a key called "items" instead. Lists and mappings read as text
        ("a, b"; "shop → shop-copy"), never as Python; empty ones are left out."""
        return sorted(
            (key, _readable(value))
            for key, value in self.detail.items()
            if value not in ([], {}, None, "")
        )


def _readable(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} → {_readable(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v) for v in value)
    return str(value)
