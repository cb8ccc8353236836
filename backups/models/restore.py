"""Restores of a backup into a cluster, with a result per item."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from workspaces.access import RestoreItemQuerySet, RestoreQuerySet

from .operation import Operation
from .options import ClusterResources


class Restore(Operation):
    """A restore of one backup into a target cluster (or a dry-run preview of it)."""

    class ExistingPolicy(models.TextChoices):
        NONE = "none", "Skip existing objects and warn when they differ"
        UPDATE = "update", "Patch existing objects that differ"

    name = models.CharField(max_length=253, unique=True)
    backup = models.ForeignKey(
        "backups.Backup", null=True, blank=True, on_delete=models.SET_NULL, related_name="restores"
    )
    backup_name = models.CharField(max_length=253)
    run = models.ForeignKey(
        "backups.BackupRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="restores",
        help_text="Set when a workspace restore restored a whole run.",
    )
    source_cluster_name = models.CharField(max_length=253, blank=True)
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        on_delete=models.PROTECT,
        related_name="restores",
        help_text="The target cluster's workspace.",
    )
    target_cluster = models.ForeignKey(
        "workspaces.Cluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="restores",
    )
    target_cluster_name = models.CharField(max_length=253)
    include_namespaces = models.JSONField(default=list, blank=True)
    exclude_namespaces = models.JSONField(default=list, blank=True)
    namespace_mapping = models.JSONField(default=dict, blank=True)
    include_resources = models.JSONField(default=list, blank=True)
    exclude_resources = models.JSONField(default=list, blank=True)
    label_selector = models.CharField(max_length=500, blank=True)
    cluster_resources = models.CharField(
        max_length=10, choices=ClusterResources.choices, default=ClusterResources.AUTO
    )
    restore_pvs = models.BooleanField(default=False)
    storage_class_mapping = models.JSONField(
        default=dict, blank=True, help_text="Storage class in the backup -> class in the target."
    )
    preserve_node_ports = models.BooleanField(default=False)
    existing_policy = models.CharField(
        max_length=10, choices=ExistingPolicy.choices, default=ExistingPolicy.NONE
    )
    modifier_set = models.ForeignKey(
        "backups.ResourceModifierSet",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="restores",
        help_text="The resource modifier set chosen; its rules are copied below.",
    )
    resource_modifiers = models.TextField(
        blank=True, help_text="The resource modifier rules this restore runs with (a copy)."
    )
    chosen_items = models.JSONField(
        default=list,
        blank=True,
        help_text="A granular restore's items, each [type, namespace, name] as the backup's "
        "resource list names them (apps/v1/Deployment); empty: all the filters allow.",
    )
    is_preview = models.BooleanField(default=False, help_text="A server-side dry run only.")
    from_preview = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="confirmed_as",
        help_text="The preview this restore confirmed (one restore per preview, at most).",
    )
    option_warnings = models.JSONField(
        default=list,
        blank=True,
        help_text="What the wizard warned about the options (a mapping source not in the backup).",
    )
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    warnings_count = models.PositiveIntegerField(default=0)

    objects = RestoreQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("restore_detail", args=[self.pk])

    @property
    def mapping_pairs(self) -> list[tuple[str, str]]:
        """(source, target) pairs, for templates (a namespace may be called "items")."""
        return sorted(self.namespace_mapping.items())


class RestoreItem(models.Model):
    """What happened to one object of a restore, and why."""

    class Outcome(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        SKIPPED_EQUAL = "skipped_equal", "Skipped: already exists and is equal"
        SKIPPED_EXISTS = "skipped_exists", "Skipped: exists and differs (warning)"
        FAILED = "failed", "Failed"

    restore = models.ForeignKey(Restore, on_delete=models.CASCADE, related_name="items")
    resource = models.CharField(max_length=253, help_text="group-resource, e.g. deployments.apps")
    namespace = models.CharField(max_length=253, blank=True)
    name = models.CharField(max_length=253)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    message = models.TextField(blank=True)

    objects = RestoreItemQuerySet.as_manager()

    class Meta:
        ordering = ["restore", "id"]
        indexes = [models.Index(fields=["restore", "outcome"])]

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource} {where}{self.name}: {self.outcome}"
