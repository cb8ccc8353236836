"""Celery tasks: thin wrappers that take a primary key, claim the row and call the engine."""

from __future__ import annotations

import logging

from celery import shared_task

from .models import Backup, EtcdRestore, EtcdSnapshot, Restore, Status
from .reporting import ItemRecorder, claimed, job_frame

log = logging.getLogger(__name__)


@shared_task
def fail_stale_operations() -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, lost)."""
    failed = sum(model.fail_stale() for model in (Backup, Restore, EtcdSnapshot, EtcdRestore))
    if failed:
        log.warning("marked %d job(s) failed: their worker stopped sending heartbeats", failed)
    return failed


PHASE_STATUS = {
    "Completed": Status.COMPLETED,
    "PartiallyFailed": Status.PARTIALLY_FAILED,
    "Failed": Status.FAILED,
}


@shared_task(acks_late=True)
def run_backup(backup_id: int) -> str:
    """Run one backup. Safe to deliver twice: only the claim winner works."""
    from workspaces import audit

    from .engine.backup import run_backup as engine_run_backup

    backup = claimed(Backup.objects.select_related("cluster", "location"), backup_id)
    if backup is None:
        return "skipped"
    if backup.cluster is None:
        backup.mark_failed("The cluster was removed from the console before the backup ran.")
        return backup.status
    with job_frame(backup, backup.location, "backup") as (provider, reporter):
        outcome = engine_run_backup(backup, provider, progress=reporter.progress, log=reporter.log)
    if backup.is_done:  # crashed
        return backup.status
    backup.finish(
        PHASE_STATUS[outcome.phase],
        error=outcome.error,
        items_done=outcome.items,
        items_total=max(outcome.items, backup.items_total),
        errors_count=outcome.errors,
        warnings_count=outcome.warnings,
        size_bytes=outcome.size_bytes,
        sha256=outcome.sha256,
        kubernetes_version=outcome.kubernetes_version,
        expires_at=outcome.expires,
        phase=outcome.phase,
    )
    audit.record(backup.created_by, "backed up", backup, result=outcome.phase, items=outcome.items)
    return backup.status


@shared_task
def tick_schedules() -> int:
    """Every minute: fire the schedules that are due (each exactly once)."""
    from .scheduling import tick

    return len(tick())


@shared_task
def expire_backups() -> int:
    """Every hour: delete expired backups (storage first, then the row)."""
    from .expiry import gc_backups

    return len(gc_backups().deleted)


@shared_task
def sync_locations() -> int:
    """Periodically import backups found in every available location with a workspace."""
    from locations.models import BackupLocation
    from locations.providers.base import StorageError

    from .sync import sync_location

    imported = 0
    for location in BackupLocation.objects.filter(
        workspace__isnull=False, status=BackupLocation.Status.AVAILABLE
    ):
        try:
            imported += len(sync_location(location).imported)
        except StorageError as exc:
            log.warning("sync of %s failed: %s", location, exc)
    return imported


@shared_task(acks_late=True)
def run_restore(restore_id: int) -> str:
    """Run one restore (or its dry-run preview). Safe to deliver twice."""
    from workspaces import audit

    from .engine.restore import run_restore as engine_run_restore

    restore = claimed(
        Restore.objects.select_related("backup__location", "target_cluster"), restore_id
    )
    if restore is None:
        return "skipped"
    if restore.backup is None or restore.target_cluster is None:
        restore.mark_failed("The backup or the target cluster was removed before the restore ran.")
        return restore.status
    with job_frame(restore, restore.backup.location, "restore") as (provider, reporter):
        outcome = engine_run_restore(
            restore,
            provider,
            progress=reporter.progress,
            log=reporter.log,
            record=ItemRecorder(restore),
        )
    if restore.is_done:  # crashed
        return restore.status
    restore.finish(
        PHASE_STATUS[outcome.phase],
        error=outcome.error,
        items_done=outcome.total,
        items_total=outcome.total,
        created_count=outcome.created,
        updated_count=outcome.updated,
        skipped_count=outcome.skipped,
        failed_count=outcome.failed,
        warnings_count=outcome.warnings,
        phase=outcome.phase,
    )
    if not restore.is_preview:
        audit.record(
            restore.created_by, "restored", restore, result=outcome.phase, created=outcome.created
        )
    return restore.status


@shared_task(acks_late=True)
def run_etcd_snapshot(snapshot_id: int) -> str:
    """Stream one etcd snapshot into its location, then keep the policy's number of copies."""
    from workspaces import etcd_identity

    from .engine.etcd import apply_retention, take_snapshot
    from .etcd_jobs import record_completed, record_policy_result

    snapshot = claimed(
        EtcdSnapshot.objects.select_related("cluster__workspace", "location"), snapshot_id
    )
    if snapshot is None:
        return "skipped"
    if snapshot.cluster is None:
        snapshot.mark_failed("The cluster was removed before the snapshot ran.")
        return snapshot.status
    if etcd_identity.refused(snapshot):  # the endpoint now answers as another etcd
        record_policy_result(snapshot.cluster_id, False, snapshot.error)
        return snapshot.status
    with job_frame(snapshot, snapshot.location, "snapshot") as (provider, reporter):
        outcome = take_snapshot(
            snapshot,
            provider,
            progress=lambda done, phase: reporter.progress(done, 0, phase),
            log=reporter.log,
        )
        if outcome.ok:
            record_completed(snapshot, outcome)
            policy = getattr(snapshot.cluster, "etcd_policy", None)
            if policy is not None and policy.enabled:
                removed = apply_retention(
                    snapshot.cluster, snapshot.location, policy.keep, provider
                )
                if removed:
                    snapshot.append_log(f"retention: deleted {', '.join(removed)}")
        else:
            snapshot.mark_failed(outcome.error)
    snapshot.refresh_from_db()
    record_policy_result(snapshot.cluster_id, snapshot.status == Status.COMPLETED, snapshot.error)
    return snapshot.status


@shared_task(acks_late=True)
def run_etcd_restore(restore_id: int) -> str:
    """Run a snapshot's restore runbook on a control plane the console can reach."""
    from workspaces import audit, etcd_identity

    from .engine.etcd import restore_locally

    restore = claimed(
        EtcdRestore.objects.select_related("snapshot__location", "snapshot__cluster"), restore_id
    )
    if restore is None:
        return "skipped"
    if restore.snapshot is None:
        restore.mark_failed("The snapshot was deleted before the restore ran.")
        return restore.status
    if etcd_identity.refused(restore):  # the endpoint now answers as another etcd
        return restore.status
    with job_frame(restore, restore.snapshot.location, "etcd restore") as (provider, reporter):
        result = restore_locally(restore.snapshot, provider, log=reporter.log)
    if restore.is_done:  # crashed
        return restore.status
    if result.ok:
        restore.finish(Status.COMPLETED, phase="Completed")
    else:
        restore.finish(Status.FAILED, error=result.error, phase="Failed")
    audit.record(restore.created_by, "restored etcd", restore, ok=result.ok)
    return restore.status


@shared_task
def tick_etcd_policies() -> int:
    """Every minute: start the etcd snapshots whose policy is due."""
    from .etcd_jobs import tick_etcd

    return len(tick_etcd())
