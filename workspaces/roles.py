"""Workspace roles as bundles of object permissions.

A role is not stored as a permission of its own: granting "Operator" to a user
or team assigns the guardian permissions listed here on the Workspace, and the
Membership row remembers which role was granted so pages can show it. Checks
always ask for an action ("backup", "restore", ...), never for a role name, so
a cluster-level grant can add one action for one cluster.
"""

from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    """What a user may do; each is a permission codename on Workspace and Cluster."""

    VIEW = "view", "See it, its backups, restores, snapshots and logs"
    BACKUP = "backup", "Create backups"
    RESTORE = "restore", "Restore into it"
    SNAPSHOT = "snapshot", "Run etcd snapshots"
    DOWNLOAD = "download", "Download backup archives and etcd snapshots (every Secret in clear)"
    MANAGE = "manage", "Manage clusters, schedules, members; delete backups"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    Role.VIEWER: (Action.VIEW,),
    Role.OPERATOR: (
        Action.VIEW,
        Action.BACKUP,
        Action.RESTORE,
        Action.SNAPSHOT,
        Action.DOWNLOAD,
    ),
    Role.ADMIN: (
        Action.VIEW,
        Action.BACKUP,
        Action.RESTORE,
        Action.SNAPSHOT,
        Action.DOWNLOAD,
        Action.MANAGE,
    ),
}

ROLE_HELP = {
    Role.VIEWER: "sees the workspace, its clusters, backups, restores, snapshots and logs",
    Role.OPERATOR: (
        "a Viewer who also creates backups and restores, runs etcd snapshots and "
        "downloads archives and snapshots"
    ),
    Role.ADMIN: "an Operator who also manages clusters, schedules, members and deletes backups",
}


def codename(action: str, model: str) -> str:
    """The permission codename for an action on a model, e.g. ``backup_workspace``."""
    return f"{action}_{model}"


def object_permissions(model: str) -> list[tuple[str, str]]:
    """Meta.permissions for a model that carries the actions (``view`` is Django's own)."""
    return [
        (codename(action.value, model), f"{action.label} ({model})")
        for action in Action
        if action != Action.VIEW
    ]
