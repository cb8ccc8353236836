"""Removing what the volume work left in a cluster, by label.

* ``sweep_operation(objects, op)``: every object labelled ``palette.io/operation=<op>``
  (mover pods, temporary claims, snapshots and contents): what a job deletes at its end,
  and what the reaper and the periodic sweep delete for a job that could not.
* ``operations_in(objects)``: the operation labels present, for the sweep to ask which
  jobs are over.
* ``delete_backup_snapshots(objects, backup)``: the snapshots a backup kept (label
  ``palette.io/backup``), when the backup is deleted or did not complete.
"""

from __future__ import annotations

import contextlib

from backups.engine.kube.api import ApiError
from backups.engine.volumes.cluster import Objects, content_path, core_path, snapshot_path
from backups.engine.volumes.objects import (
    BACKUP_LABEL,
    OPERATION_LABEL,
    SNAPSHOT_API,
    label_value,
)

KINDS = (
    ("/api/v1/pods", lambda ns, n: core_path(ns, "pods", n)),
    ("/api/v1/persistentvolumeclaims", lambda ns, n: core_path(ns, "persistentvolumeclaims", n)),
    (f"/apis/{SNAPSHOT_API}/volumesnapshots", snapshot_path),
    (f"/apis/{SNAPSHOT_API}/volumesnapshotcontents", lambda _ns, n: content_path(n)),
)


def _labelled(objects: Objects, selector: str):
    for listing, path_of in KINDS:
        try:
            items = objects.list(listing, selector)
        except ApiError:  # no snapshot CRDs in this cluster
            continue
        for item in items:
            yield item, path_of


def sweep_operation(objects: Objects, operation: str) -> int:
    """Delete every object of ``operation``; returns how many were deleted."""
    removed = 0
    for item, path_of in _labelled(objects, f"{OPERATION_LABEL}={operation}"):
        meta = item["metadata"]
        with contextlib.suppress(ApiError):
            removed += objects.delete(path_of(meta.get("namespace", ""), meta["name"]))
    return removed


def operations_in(objects: Objects) -> set[str]:
    """The ``palette.io/operation`` values on objects in the cluster."""
    return {
        item["metadata"]["labels"][OPERATION_LABEL]
        for item, _path in _labelled(objects, OPERATION_LABEL)
    }


def delete_backup_snapshots(objects: Objects, backup_name: str) -> int:
    """Delete the VolumeSnapshots kept for ``backup_name`` (their contents go with them
    when the class's deletion policy is Delete, as it is for snapshots the backup took)."""
    selector = f"{BACKUP_LABEL}={label_value(backup_name)}"
    try:
        items = objects.list(f"/apis/{SNAPSHOT_API}/volumesnapshots", selector)
    except ApiError as exc:
        if exc.status == 404:  # no snapshot CRDs: nothing was kept here
            return 0
        raise
    removed = 0
    for item in items:
        meta = item["metadata"]
        removed += objects.delete(snapshot_path(meta["namespace"], meta["name"]))
    return removed
