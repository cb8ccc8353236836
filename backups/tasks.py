"""Celery tasks: one line each; the jobs package owns what happens."""

from __future__ import annotations

from celery import shared_task

from .etcd_policy import tick_etcd
from .expiry import gc_backups
from .jobs import BackupJob, EtcdRestoreJob, RestoreJob, SnapshotJob, reap
from .jobs.volumes import sweep_recent
from .scheduling import tick
from .sync import sync_all


@shared_task
def fail_stale_operations() -> int:
    """Fail jobs whose worker died; queue again, then fail, jobs no worker claimed."""
    return reap()


@shared_task(acks_late=True)
def run_backup(backup_id: int) -> str:
    return BackupJob.run(backup_id)


@shared_task(acks_late=True)
def run_restore(restore_id: int) -> str:
    return RestoreJob.run(restore_id)


@shared_task(acks_late=True)
def run_etcd_snapshot(snapshot_id: int) -> str:
    return SnapshotJob.run(snapshot_id)


@shared_task(acks_late=True)
def run_etcd_restore(restore_id: int) -> str:
    return EtcdRestoreJob.run(restore_id)


@shared_task(acks_late=True)
def run_copy(backup_id: int) -> str:
    from .copies import run_copy
    from .models import Backup

    return run_copy(Backup.objects.get(pk=backup_id)).status


@shared_task
def sweep_volume_objects() -> int:
    """Remove temporary volume objects of jobs that ended in the last day (a run that
    failed because its cluster was unreachable could not remove them itself)."""
    return sweep_recent()


@shared_task
def tick_schedules() -> int:
    """Every minute: fire the schedules that are due (each exactly once)."""
    return len(tick())


@shared_task
def tick_etcd_policies() -> int:
    """Every minute: start the etcd snapshots whose policy is due."""
    return len(tick_etcd())


@shared_task
def expire_backups() -> int:
    """Every hour: delete expired backups (storage first, then the row)."""
    return len(gc_backups().deleted)


@shared_task
def sync_locations() -> int:
    """Periodically import backups found in every available location with a workspace."""
    return sync_all()
