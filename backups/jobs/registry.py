"""The one list of job kinds: what the stale check, the admin, the status pages,
the cancel button and the commands' ``--wait`` go through."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backups.engine.words import counted

from ..models import Operation
from . import volumes
from .backup import BackupJob
from .base import Job
from .etcd import EtcdRestoreJob, SnapshotJob
from .restore import RestoreJob

log = logging.getLogger(__name__)

JOBS: dict[str, type[Job]] = {
    job.kind: job for job in (BackupJob, RestoreJob, SnapshotJob, EtcdRestoreJob)
}
_BY_MODEL = {job.model: job for job in JOBS.values()}


def job_of(row_or_model) -> type[Job]:
    """The job kind of a row (or of its model)."""
    model = row_or_model if isinstance(row_or_model, type) else type(row_or_model)
    return _BY_MODEL[model]


def reap(now=None) -> int:
    """Fail running rows whose worker died; re-queue, then fail, rows no worker claimed."""
    now = now or timezone.now()
    busy = any(job.busy(now) for job in JOBS.values())
    cutoff = now - timedelta(seconds=settings.OPERATION_HEARTBEAT_TIMEOUT)
    clusters = volumes.stale_clusters(cutoff)
    stale = sum(job.reap_stale(now) for job in JOBS.values())
    if stale:
        log.warning(
            "marked %s failed: their worker stopped sending heartbeats", counted(stale, "job")
        )
        volumes.sweep(clusters)  # what the dead workers' volume work left in the clusters
    unclaimed = sum(job.reap_unclaimed(now, workers_busy=busy) for job in JOBS.values())
    if unclaimed:
        log.warning("%s queued again or failed", counted(unclaimed, "unclaimed pending job"))
    return stale + unclaimed


def run_and_wait(row: Operation, poll: float = 1.0) -> Operation:
    """Run the job here (a worker may win the claim instead), then wait for its end."""
    job = job_of(row)
    job.run(row.pk)
    while True:
        row = job.model.objects.get(pk=row.pk)
        if row.is_done:
            return row
        time.sleep(poll)
