"""Who may see and do what: one rule per model, written once, applied by ``restrict()``.

Every model the pages show has a queryset with ``restrict(user, action)`` (the idea
is netbox's): ``Backup.objects.restrict(user)``, ``cluster.backups.restrict(user)``,
``Schedule.objects.restrict(user, Action.MANAGE)``. Views fetch objects, and the
related collections they show, only through it. An object outside the user's scope
is simply not found (the view answers 404), and a related list shows the rows its
own model's rule allows, never "everything of a workspace I may see".

Each rule is one SQL WHERE with a few subqueries on guardian's direct-foreign-key
permission tables, so a page costs the same number of queries whatever the number
of rows or grants.

The words the rules share:

- A superuser may do everything; an anonymous or inactive user nothing.
- I *hold a role* in a workspace for an action when I, or a team I am in, hold a
  role there that includes the action (roles.py lists them).
- I may do an action *on a cluster* when I hold a role for it in the cluster's
  workspace, or when I or my team hold a grant for that action on that one cluster.

Each model's own rule is the docstring of its queryset below. Together they give a
*single-cluster grantee* (a grant on one cluster, no role in its workspace) the
workspace's name and description and, in it, exactly that cluster's things: the
cluster, its backups, the restores into it, its etcd snapshots, policy and etcd
restores, its schedules, the runs that backed it up (showing only its backups and
skip records) and the audit events about it. Not the members (the grantee is not
one, so they see no member at all, themselves included), not the workspace-wide
schedules, not the workspace's locations (unless granted), not the other clusters.

This module imports no model: the models import it for their managers, and it finds
the grant tables through the app registry when a rule is built.
"""

from __future__ import annotations

from django.apps import apps
from django.db.models import Model, Q, QuerySet

from .roles import Action, codename

NOTHING = Q(pk__in=[])
EVERYTHING = Q()

# A location grant's codename for each workspace action it stands in for.
LOCATION_GRANTS = {
    Action.VIEW: "view_backuplocation",
    Action.BACKUP: "use_backuplocation",
    Action.MANAGE: "change_backuplocation",
}

# The (user, team) grant tables of each model that has its own grants.
GRANT_TABLES = {
    "workspace": ("workspaces.WorkspaceUserObjectPermission", "workspaces.WorkspaceGroupObjectPermission"),
    "cluster": ("workspaces.ClusterUserObjectPermission", "workspaces.ClusterGroupObjectPermission"),
    "location": ("locations.LocationUserObjectPermission", "locations.LocationGroupObjectPermission"),
}  # fmt: skip


def _scope(user) -> Q | None:
    """NOTHING or EVERYTHING when the user alone decides; None when grants do."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    if user.is_superuser:
        return EVERYTHING
    return None


def _grants(kind: str, user, perm: str, key: str) -> Q:
    """Rows whose ``key`` is an object on which ``user`` holds ``perm``, directly or
    through a team: two subqueries, never a query per row."""
    user_table, team_table = (apps.get_model(label) for label in GRANT_TABLES[kind])
    direct = user_table.objects.filter(user=user, permission__codename=perm)
    via_team = team_table.objects.filter(group__user=user, permission__codename=perm)
    return Q(**{key: direct.values("content_object_id")}) | Q(
        **{key: via_team.values("content_object_id")}
    )


def _role(user, action: str, field: str = "") -> Q:
    """Rows whose workspace (``field``, e.g. "workspace__") gives me a role for ``action``."""
    return _grants("workspace", user, codename(action, "workspace"), f"{field}pk__in")


def _cluster_grant(user, action: str, field: str = "") -> Q:
    """Rows whose cluster (``field``, e.g. "cluster__") I hold a grant on for ``action``."""
    return _grants("cluster", user, codename(action, "cluster"), f"{field}pk__in")


class RestrictedQuerySet(QuerySet):
    """A queryset that narrows itself to what a user may do; each model says its rule."""

    def restrict(self, user, action: str = Action.VIEW) -> QuerySet:
        """The rows on which ``user`` may do ``action`` (the model's rule)."""
        fixed = _scope(user)
        return self.filter(fixed if fixed is not None else self.rule(user, action))

    def rule(self, user, action: str) -> Q:
        raise NotImplementedError(f"{self.model.__name__} has no access rule")

    def permits(self, user, action: str, obj: Model) -> bool:
        return self.restrict(user, action).filter(pk=obj.pk).exists()


class WorkspaceQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see a workspace when I hold a role in it, or when I may view one of its
        clusters (it then shows me that cluster's things only). Any other action in a
        workspace needs a role that includes it."""
        if action != Action.VIEW:
            return _role(user, action)
        cluster_model = apps.get_model("workspaces.Cluster")
        granted = cluster_model.objects.filter(_cluster_grant(user, Action.VIEW))
        return _role(user, action) | Q(pk__in=granted.values("workspace_id"))

    def with_role(self, user, action: str = Action.VIEW) -> QuerySet:
        """The workspaces where I hold a role for ``action``: the whole workspace, never
        a part of it through a cluster grant."""
        fixed = _scope(user)
        return self.filter(fixed if fixed is not None else _role(user, action))

    def permits(self, user, action: str, obj: Model) -> bool:
        """A check on a workspace asks about the whole of it (a role)."""
        return self.with_role(user, action).filter(pk=obj.pk).exists()


class MembershipQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see who holds a role in a workspace when I hold a role there myself;
        changing roles needs the manage action. A single-cluster grantee sees nobody."""
        return _role(user, action, "workspace__")


class ClusterQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may do an action on a cluster when my role in its workspace includes it, or
        when I or my team hold a grant for that action on that one cluster."""
        return _role(user, action, "workspace__") | _cluster_grant(user, action)


class LocationQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may view, use or change a location when I or my team hold that grant on it,
        or when my role in its workspace gives view, backup or manage respectively. A
        location of no workspace is reached through grants only."""
        return _role(user, action, "workspace__") | _grants(
            "location", user, LOCATION_GRANTS[action], "pk__in"
        )


class OperationQuerySet(RestrictedQuerySet):
    """Backups, etcd snapshots and etcd restores: the rule of their cluster."""

    cluster_field = "cluster"

    def rule(self, user, action: str) -> Q:
        """I may see (or delete, with manage) a backup, an etcd snapshot or an etcd
        restore when I may do so on its cluster; once the cluster is gone, when my role
        in the workspace the row keeps allows it."""
        return _operation(user, action, self.cluster_field)


def _operation(user, action: str, cluster_field: str) -> Q:
    return _role(user, action, "workspace__") | _cluster_grant(user, action, f"{cluster_field}__")


class RestoreQuerySet(OperationQuerySet):
    """I may see a restore when I may view the cluster it restores INTO (or, once that
    cluster is gone, its workspace); the backup's source cluster does not count."""

    cluster_field = "target_cluster"


class ScheduleQuerySet(OperationQuerySet):
    """I may see (or change, with manage) a cluster's schedule when I may do so on that
    cluster; a workspace-wide schedule (no cluster) only through a role in the
    workspace, so a single-cluster grantee does not see it."""


class RestoreItemQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see what happened to an object of a restore when I may see the restore."""
        restores = apps.get_model("backups.Restore").objects.restrict(user, action)
        return Q(restore__in=restores.values("pk"))


class JobDetailQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see a volume's or a hook's result when I may see the backup or the
        restore it belongs to."""
        backups = apps.get_model("backups.Backup").objects.restrict(user, action)
        restores = apps.get_model("backups.Restore").objects.restrict(user, action)
        return Q(backup__in=backups.values("pk")) | Q(restore__in=restores.values("pk"))


class LocationKeyQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see which keys a location has (never the keys: they are stored
        wrapped) when I may do ``action`` on the location."""
        locations = apps.get_model("locations.BackupLocation").objects.restrict(user, action)
        return Q(location__in=locations.values("pk"))


class BackupRunQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see a run when I hold a role in its workspace, when it is a firing of a
        schedule of a cluster I may view, or when it made a backup of a cluster I may
        view. (The pages then show only the backups and skip records I may see.)"""
        backups = apps.get_model("backups.Backup").objects.filter(
            _cluster_grant(user, action, "cluster__")
        )
        return (
            _role(user, action, "workspace__")
            | _cluster_grant(user, action, "schedule__cluster__")
            | Q(pk__in=backups.values("run_id"))
        )


class EtcdPolicyQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see (or change, with manage) a cluster's etcd policy when I may do so
        on the cluster."""
        return _role(user, action, "cluster__workspace__") | _cluster_grant(
            user, action, "cluster__"
        )


class ResourceModifierSetQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may see a workspace's resource modifier sets when I hold a role in it, and
        create, change or delete them when my role there may restore. They belong to
        the whole workspace: a single-cluster grant shows none of them."""
        return _role(user, action, "workspace__")


class AuditEventQuerySet(RestrictedQuerySet):
    def rule(self, user, action: str) -> Q:
        """I may read an event when I hold a role in its workspace, or when it is about a
        cluster I may view (the cluster, or a backup, restore, snapshot, schedule or
        policy of it). Events of no workspace are for staff (the admin)."""
        return _role(user, action, "workspace__") | _cluster_grant(user, action, "cluster__")


def workspaces_for(user, action: str = Action.VIEW) -> QuerySet:
    """The workspaces the user may see (VIEW), or holds a role for ``action`` in."""
    workspaces = apps.get_model("workspaces.Workspace").objects
    return (
        workspaces.restrict(user) if action == Action.VIEW else workspaces.with_role(user, action)
    )


def clusters_for(user, action: str = Action.VIEW) -> QuerySet:
    return apps.get_model("workspaces.Cluster").objects.restrict(user, action)


def operation_q(user, action: str = Action.VIEW, cluster_field: str = "cluster") -> Q:
    """OperationQuerySet's rule as a Q, for code written before ``restrict()``."""
    fixed = _scope(user)
    return fixed if fixed is not None else _operation(user, action, cluster_field)


def can(user, action: str, obj: Model) -> bool:
    """One query: may ``user`` do ``action`` on ``obj`` (any model with a rule here)? A
    workspace is asked about as a whole: through a role, never a cluster grant."""
    queryset = type(obj)._default_manager.all()
    if not isinstance(queryset, RestrictedQuerySet):
        raise TypeError(f"can() does not know {type(obj).__name__}")
    return queryset.permits(user, action, obj)


def manageable_teams(user) -> QuerySet:
    """The teams whose members ``user`` may change: a superuser every team; a workspace
    Admin the teams used (by a role or a cluster grant) in a workspace they administer
    and nowhere else, holding no site-wide permission and no location grant (adding
    oneself to such a team would otherwise give access beyond one's own workspaces)."""
    groups = apps.get_model("auth.Group").objects
    fixed = _scope(user)
    if fixed is not None:
        return groups.filter(fixed)
    mine = workspaces_for(user, Action.MANAGE).values("pk")
    membership = apps.get_model("workspaces.Membership").objects
    cluster_grants = apps.get_model(GRANT_TABLES["cluster"][1]).objects
    elsewhere = (
        Q(pk__in=membership.exclude(workspace__in=mine).values("group"))
        | Q(pk__in=cluster_grants.exclude(content_object__workspace__in=mine).values("group"))
        | Q(pk__in=apps.get_model(GRANT_TABLES["location"][1]).objects.values("group"))
        | Q(pk__in=groups.filter(permissions__isnull=False).values("pk"))
    )
    used_here = Q(pk__in=membership.filter(workspace__in=mine).values("group")) | Q(
        pk__in=cluster_grants.filter(content_object__workspace__in=mine).values("group")
    )
    return groups.filter(used_here).exclude(elsewhere)
