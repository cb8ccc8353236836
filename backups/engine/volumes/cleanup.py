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
import time

from backups.engine.kube.api import ApiError
from backups.engine.volumes.cluster import (
    POLL,
    Objects,
    content_path,
    core_path,
    snapshot_path,
)
from backups.engine.volumes.objects import (
    BACKUP_LABEL,
    OPERATION_LABEL,
    SNAPSHOT_API,
    label_value,
)

CLEANUP_WAIT = 90.0  # seconds a job waits for its temporary objects to be gone

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


def sweep_operation(objects: Objects, operation: str, wait: float = 0.0) -> int:
    """Delete every object of ``operation``; returns how many were deleted. With ``wait``,
    poll (bounded) until they are gone, so that a job ends with nothing of its own left."""
    selector = f"{OPERATION_LABEL}={operation}"
    removed = 0
    for item, path_of in _labelled(objects, selector):
        meta = item["metadata"]
        with contextlib.suppress(ApiError):
            removed += objects.delete(path_of(meta.get("namespace", ""), meta["name"]))
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
        if next(_labelled(objects, selector), None) is None:
            break
        time.sleep(POLL)
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
