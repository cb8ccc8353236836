"""Keeping a policy's number of etcd snapshots: the oldest beyond it are deleted."""

from __future__ import annotations

import logging

from backups.engine.storage.base import Provider, StorageError

from .models import EtcdSnapshot, Status

log = logging.getLogger(__name__)


def apply_retention(cluster, location, keep: int, provider: Provider) -> list[str]:
    """Delete the oldest completed snapshots of ``cluster`` in ``location`` beyond ``keep``.

    Storage object first, then the row, one snapshot at a time: a snapshot whose
    object cannot be deleted keeps its row (and is retried next time), so no row
    ever points at nothing and no object is orphaned. ``keep`` below 1 counts
    as 1: retention never deletes the newest snapshot. Returns the names deleted,
    oldest first.
    """
    keep = max(1, int(keep))
    rows = EtcdSnapshot.objects.filter(
        cluster=cluster, location=location, status=Status.COMPLETED
    ).order_by("-created_at", "-id")
    deleted = []
    for row in reversed(list(rows[keep:])):
        try:
            if row.object_key:
                provider.delete(row.object_key)
        except StorageError as err:
            log.warning("etcd retention: could not delete %s: %s", row.object_key, err)
            continue
        row.delete()
        deleted.append(row.name)
    return deleted
