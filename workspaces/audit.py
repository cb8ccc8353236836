"""Writing the audit trail: one call at each place where someone changes something."""

from __future__ import annotations

import logging

from django.db.models import Model

from .models import AuditEvent, Cluster, Workspace

log = logging.getLogger("palette.audit")


def signed_in(user):
    """``user`` when it is a signed-in user, else None (anonymous, or the system)."""
    return user if getattr(user, "is_authenticated", False) else None


def cluster_id_of(obj: Model) -> int | None:
    """The cluster an object belongs to: itself, or the cluster of a backup, snapshot,
    schedule or policy, or the cluster a restore writes into."""
    if isinstance(obj, Cluster):
        return obj.pk
    return getattr(obj, "cluster_id", None) or getattr(obj, "target_cluster_id", None)


def record(
    actor, action: str, obj: Model, workspace: Workspace | None = None, **detail
) -> AuditEvent:
    """Note that ``actor`` (a user, or None for the system) did ``action`` to ``obj``.

    ``detail`` must never carry a secret: callers pass names and options only.
    """
    if workspace is None:
        workspace = obj if isinstance(obj, Workspace) else getattr(obj, "workspace", None)
    user = signed_in(actor)
    event = AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "system",
        action=action,
        object_type=obj._meta.verbose_name,
        object_id=str(obj.pk or ""),
        object_repr=str(obj)[:200],
        workspace=workspace,
        cluster_id=cluster_id_of(obj),
        detail=detail,
    )
    log.info("audit: %s", event)
    return event
