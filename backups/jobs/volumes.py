"""The volume side of backup and restore jobs: per-volume and per-hook rows, and the
removal of temporary objects that a job could not remove itself.

``VolumeRecorder`` turns the engine's ``volume``/``hook`` callbacks into
``VolumeResult``/``HookResult`` rows (a volume's row at most twice a second while its
bytes move, at once when its state changes). ``sweep`` deletes, in each cluster, the
objects labelled ``palette.io/operation`` whose job is one of this console's and over: the
reaper calls it for the rows it fails, and a periodic task for the rest (a run that
ended Failed because its cluster was unreachable, say).
"""

from __future__ import annotations

import logging
import time

from django.db import IntegrityError, transaction

from backups.engine.kube.api import KubeError
from backups.engine.kube.client import KubeconfigError
from backups.engine.volumes.cleanup import delete_backup_snapshots, operations_in, sweep_operation
from backups.engine.volumes.cluster import Objects
from backups.engine.volumes.objects import label_value
from backups.engine_inputs import cluster_connection, operation_label

from ..models import ACTIVE_STATUSES, Backup, HookResult, Restore, VolumeResult

log = logging.getLogger(__name__)
WRITE_EVERY = 0.5


class VolumeRecorder:
    def __init__(self, owner_field: str, row):
        self.owner = {owner_field: row}
        self.last: dict[str, tuple[float, str]] = {}

    def volume(self, entry) -> None:
        now = time.monotonic()
        when, state = self.last.get(entry.key, (0.0, ""))
        if state == entry.state and now - when < WRITE_EVERY:
            return
        self.last[entry.key] = (now, entry.state)
        fields = dict(
            storage_class=entry.storage_class[:253], capacity=str(entry.capacity)[:40],
            method=entry.method, state=entry.state, reason=entry.reason,
            bytes_done=entry.bytes_done, bytes_total=entry.bytes_total,
            snapshot_name=str((entry.snapshot or {}).get("name", ""))[:253],
            copy_sha256=str((entry.copy or {}).get("sha256", "")),
            started_at=entry.started, finished_at=entry.finished,
        )  # fmt: skip
        key = dict(namespace=entry.namespace[:253], claim=entry.claim[:253], **self.owner)
        try:
            with transaction.atomic():
                VolumeResult.objects.update_or_create(**key, defaults=fields)
        except IntegrityError:  # created by a concurrent write of the same row
            VolumeResult.objects.filter(**key).update(**fields)

    def hook(self, report) -> None:
        HookResult.objects.create(
            **self.owner, namespace=report.namespace[:253], pod=report.pod[:253],
            container=report.container[:253], phase=report.phase, command=report.command,
            exit_code=report.exit_code, output=report.output, ok=report.ok,
            fail_on_error=report.fail_on_error,
        )  # fmt: skip


def _objects(cluster) -> Objects:
    from backups.engine.kube.api import Kube

    return Objects(Kube.connect(cluster_connection(cluster)))


def _over(label: str) -> bool:
    """Is the job named by an operation label one of ours, and over? A label this
    console cannot match to one of its rows (another console's, or a row since
    deleted) is not ours to judge: its objects stay."""
    kind, _, rest = label.partition("-")
    pk, _, _token = rest.partition("-")
    model = {"backup": Backup, "restore": Restore}.get(kind)
    if model is None or not pk.isdigit():
        return False
    row = model.objects.filter(pk=int(pk)).only("status", "created_at").first()
    if row is None or label_value(operation_label(row)) != label:
        return False
    return row.status not in ACTIVE_STATUSES


def sweep(clusters) -> int:
    """Delete the temporary objects of finished jobs in ``clusters``; how many went."""
    removed = 0
    for cluster in clusters:
        objects = None
        try:
            objects = _objects(cluster)
            for label in sorted(operations_in(objects)):
                if _over(label):
                    removed += sweep_operation(objects, label)
        except (KubeError, KubeconfigError, ValueError) as exc:
            log.info("volume sweep of cluster %s: %s", cluster.name, exc)
        finally:
            if objects is not None:
                objects.kube.close()
    if removed:
        log.warning("volume sweep removed %d temporary objects of finished jobs", removed)
    return removed


def delete_snapshots(backup) -> int:
    """Delete the snapshots ``backup`` kept in its cluster (when the cluster is known)."""
    if not backup.include_disks or backup.cluster is None:
        return 0
    objects = _objects(backup.cluster)
    try:
        return delete_backup_snapshots(objects, backup.name)
    finally:
        objects.kube.close()


def _clusters_of(backups, restores) -> list:
    from workspaces.models import Cluster

    ids = set(backups.filter(include_disks=True).values_list("cluster_id", flat=True))
    ids |= set(restores.filter(restore_pvs=True).values_list("target_cluster_id", flat=True))
    return list(Cluster.objects.filter(pk__in=ids - {None}))


def stale_clusters(cutoff) -> list:
    """Clusters of volume jobs whose heartbeat stopped before ``cutoff`` (about to be
    reaped): the reaper sweeps them once it has failed the rows."""
    from ..models import Status

    running = {"status": Status.RUNNING, "heartbeat_at__lt": cutoff}
    return _clusters_of(Backup.objects.filter(**running), Restore.objects.filter(**running))


def recent_clusters(since) -> list:
    """Clusters of volume jobs that ended since ``since`` (whatever their status)."""
    ended = {"finished_at__gte": since}
    return _clusters_of(Backup.objects.filter(**ended), Restore.objects.filter(**ended))


def sweep_recent(hours: int = 24) -> int:
    """The periodic sweep: clusters of volume jobs that ended in the last ``hours``."""
    from datetime import timedelta

    from django.utils import timezone

    return sweep(recent_clusters(timezone.now() - timedelta(hours=hours)))
