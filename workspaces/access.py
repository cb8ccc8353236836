"""Who may see and do what: permission-filtered querysets, written once.

Every read in a view goes through these. Each filter is one SQL WHERE with a
few subqueries on guardian's direct-foreign-key permission tables, so a list
costs the same number of queries whatever the number of rows or grants, and an
object outside the user's scope is simply not found (the view answers 404).

The rules, in plain words:

- A superuser may do everything.
- I may do an action in a workspace when I, or a team I am in, hold a role
  there that includes the action (roles.py lists them).
- I may do an action on a cluster when I may do it in the cluster's workspace,
  or when I or my team hold a grant for that action on that one cluster.
- I may see a workspace when I may view it, or when I may view one of its
  clusters (then I see only that cluster in it).
- Backups, restores and etcd snapshots follow their cluster: I may see a
  backup when I may view its cluster (or its workspace, after the cluster is
  gone). Restoring INTO a cluster needs the restore action on that cluster.
- I may view, use or change a location when I hold that grant on it, or when
  its workspace gives me view, backup or manage respectively.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, Q, QuerySet
from django.shortcuts import get_object_or_404

from .models import (
    Cluster,
    ClusterGroupObjectPermission,
    ClusterUserObjectPermission,
    Workspace,
    WorkspaceGroupObjectPermission,
    WorkspaceUserObjectPermission,
)
from .roles import Action, codename

NOTHING = Q(pk__in=[])
EVERYTHING = Q()

# A location grant's codename for each workspace action it stands in for.
LOCATION_GRANTS = {
    Action.VIEW: "view_backuplocation",
    Action.BACKUP: "use_backuplocation",
    Action.MANAGE: "change_backuplocation",
}


def _grant_q(user_model, group_model, user, perm: str, key: str) -> Q:
    """Rows whose ``key`` is an object on which ``user`` holds ``perm``, directly
    or through a team: two subqueries, never a query per row."""
    direct = user_model.objects.filter(user=user, permission__codename=perm)
    via_team = group_model.objects.filter(group__user=user, permission__codename=perm)
    return Q(**{key: direct.values("content_object_id")}) | Q(
        **{key: via_team.values("content_object_id")}
    )


def _scope(user) -> Q | None:
    """NOTHING or EVERYTHING when the user alone decides; None when grants do."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return NOTHING
    if not user.is_active:
        return NOTHING
    if user.is_superuser:
        return EVERYTHING
    return None


def workspace_q(user, action: str, field: str = "") -> Q:
    """Rows whose workspace (``field``, e.g. "workspace__") allows ``action``."""
    fixed = _scope(user)
    if fixed is not None:
        return fixed
    return _grant_q(
        WorkspaceUserObjectPermission,
        WorkspaceGroupObjectPermission,
        user,
        codename(action, "workspace"),
        f"{field}pk__in",
    )


def _cluster_grant_q(user, action: str, field: str = "") -> Q:
    return _grant_q(
        ClusterUserObjectPermission,
        ClusterGroupObjectPermission,
        user,
        codename(action, "cluster"),
        f"{field}pk__in",
    )


def cluster_q(user, action: str, field: str = "") -> Q:
    """Rows whose cluster (``field``, e.g. "cluster__") allows ``action``."""
    fixed = _scope(user)
    if fixed is not None:
        return fixed
    return workspace_q(user, action, f"{field}workspace__") | _cluster_grant_q(user, action, field)


def workspace_visible_q(user) -> Q:
    """Workspaces I may view, plus those where I may view at least one cluster."""
    fixed = _scope(user)
    if fixed is not None:
        return fixed
    granted_clusters = Cluster.objects.filter(_cluster_grant_q(user, Action.VIEW))
    return workspace_q(user, Action.VIEW) | Q(pk__in=granted_clusters.values("workspace_id"))


def workspaces_for(user, action: str = Action.VIEW) -> QuerySet[Workspace]:
    if action == Action.VIEW:
        return Workspace.objects.filter(workspace_visible_q(user))
    return Workspace.objects.filter(workspace_q(user, action))


def clusters_for(user, action: str = Action.VIEW) -> QuerySet[Cluster]:
    return Cluster.objects.filter(cluster_q(user, action))


def operation_q(user, action: str = Action.VIEW, cluster_field: str = "cluster") -> Q:
    """Backups, restores, snapshots: through their cluster, or their workspace once the
    cluster is gone (the row keeps ``workspace``)."""
    fixed = _scope(user)
    if fixed is not None:
        return fixed
    return workspace_q(user, action, "workspace__") | _cluster_grant_q(
        user, action, f"{cluster_field}__"
    )


def locations_q(user, action: str = Action.VIEW) -> Q:
    fixed = _scope(user)
    if fixed is not None:
        return fixed
    from locations.models import LocationGroupObjectPermission, LocationUserObjectPermission

    return workspace_q(user, action, "workspace__") | _grant_q(
        LocationUserObjectPermission,
        LocationGroupObjectPermission,
        user,
        LOCATION_GRANTS[action],
        "pk__in",
    )


def get_for_user(queryset: QuerySet, user, action: str, scope, **lookup) -> Model:
    """Fetch one object the user may act on, or raise Http404 (never 403: no leak)."""
    return get_object_or_404(queryset.filter(scope(user, action)), **lookup)


def can(user, action: str, obj: Model) -> bool:
    """One query: may ``user`` do ``action`` on this workspace, cluster or location?"""
    from locations.models import BackupLocation

    if isinstance(obj, Workspace):
        return Workspace.objects.filter(workspace_q(user, action), pk=obj.pk).exists()
    if isinstance(obj, Cluster):
        return Cluster.objects.filter(cluster_q(user, action), pk=obj.pk).exists()
    if isinstance(obj, BackupLocation):
        return BackupLocation.objects.filter(locations_q(user, action), pk=obj.pk).exists()
    raise TypeError(f"can() does not know {type(obj).__name__}")
