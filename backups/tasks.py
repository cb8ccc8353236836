"""Celery tasks: thin wrappers that take a primary key, claim the row and call the engine."""

from __future__ import annotations

import logging
import socket

from celery import shared_task

from .models import Backup, EtcdRestore, EtcdSnapshot, Restore, Status
from .reporting import ItemRecorder, RowReporter, heartbeat

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
    from locations.providers import get_provider
    from workspaces import audit

    from .engine.backup import run_backup as engine_run_backup

    backup = Backup.objects.select_related("cluster", "location").filter(pk=backup_id).first()
    if backup is None or not backup.claim(worker=socket.gethostname()):
        return "skipped"
    reporter = RowReporter(backup)
    try:
        if backup.cluster is None:
            backup.mark_failed("The cluster was removed from the console before the backup ran.")
            return backup.status
        provider = get_provider(backup.location)
        try:
            with heartbeat(backup):
                outcome = engine_run_backup(
                    backup, provider, progress=reporter.progress, log=reporter.log
                )
        finally:
            provider.close()
    except Exception as exc:  # a bug, not a cluster or store failure: keep the reason
        log.exception("backup %s crashed", backup.name)
        reporter.flush()
        backup.mark_failed(
            f"The backup stopped on an internal error: {exc.__class__.__name__}: {exc}"
        )
        return backup.status
    reporter.flush()
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
    from locations.providers import get_provider
    from workspaces import audit

    from .engine.restore import run_restore as engine_run_restore

    restore = (
        Restore.objects.select_related("backup__location", "target_cluster")
        .filter(pk=restore_id)
        .first()
    )
    if restore is None or not restore.claim(worker=socket.gethostname()):
        return "skipped"
    if restore.backup is None or restore.target_cluster is None:
        restore.mark_failed("The backup or the target cluster was removed before the restore ran.")
        return restore.status
    reporter = RowReporter(restore)
    try:
        provider = get_provider(restore.backup.location)
        try:
            with heartbeat(restore):
                outcome = engine_run_restore(
                    restore,
                    provider,
                    progress=reporter.progress,
                    log=reporter.log,
                    record=ItemRecorder(restore),
                )
        finally:
            provider.close()
    except Exception as exc:  # a bug: keep the reason, never leave it running
        log.exception("restore %s crashed", restore.name)
        reporter.flush()
        restore.mark_failed(
            f"The restore stopped on an internal error: {exc.__class__.__name__}: {exc}"
        )
        return restore.status
    reporter.flush()
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
    from locations.providers import get_provider

    from .engine.etcd import apply_retention, take_snapshot
    from .etcd_jobs import record_policy_result

    snapshot = (
        EtcdSnapshot.objects.select_related("cluster__workspace", "location")
        .filter(pk=snapshot_id)
        .first()
    )
    if snapshot is None or not snapshot.claim(worker=socket.gethostname()):
        return "skipped"
    if snapshot.cluster is None:
        snapshot.mark_failed("The cluster was removed before the snapshot ran.")
        return snapshot.status
    reporter = RowReporter(snapshot)
    provider = get_provider(snapshot.location)
    try:
        with heartbeat(snapshot):
            outcome = take_snapshot(
                snapshot,
                provider,
                progress=lambda done, phase: reporter.progress(done, 0, phase),
                log=reporter.log,
            )
        reporter.flush()
        if not outcome.ok:
            snapshot.mark_failed(outcome.error)
            record_policy_result(snapshot.cluster_id, False, outcome.error)
            return snapshot.status
        snapshot.finish(
            Status.COMPLETED,
            object_key=outcome.key,
            size_bytes=outcome.size_bytes,
            sha256=outcome.sha256,
            revision=outcome.revision,
            etcd_version=outcome.etcd_version,
            member=outcome.member[:200],
            items_done=outcome.size_bytes,
            items_total=outcome.size_bytes,
            phase="Completed",
        )
        record_policy_result(snapshot.cluster_id, True)
        policy = getattr(snapshot.cluster, "etcd_policy", None)
        if policy is not None and policy.enabled:
            removed = apply_retention(snapshot.cluster, snapshot.location, policy.keep, provider)
            if removed:
                snapshot.append_log(f"retention: deleted {', '.join(removed)}")
    except Exception as exc:  # a bug: keep the reason, never leave it running
        log.exception("etcd snapshot %s crashed", snapshot.name)
        reporter.flush()
        snapshot.mark_failed(
            f"The snapshot stopped on an internal error: {exc.__class__.__name__}: {exc}"
        )
        record_policy_result(snapshot.cluster_id, False, snapshot.error)
    finally:
        provider.close()
    return snapshot.status


@shared_task(acks_late=True)
def run_etcd_restore(restore_id: int) -> str:
    """Run a snapshot's restore runbook on a control plane the console can reach."""
    from locations.providers import get_provider
    from workspaces import audit

    from .engine.etcd import restore_locally

    restore = (
        EtcdRestore.objects.select_related("snapshot__location", "snapshot__cluster")
        .filter(pk=restore_id)
        .first()
    )
    if restore is None or not restore.claim(worker=socket.gethostname()):
        return "skipped"
    if restore.snapshot is None:
        restore.mark_failed("The snapshot was deleted before the restore ran.")
        return restore.status
    reporter = RowReporter(restore)
    provider = get_provider(restore.snapshot.location)
    try:
        with heartbeat(restore):
            result = restore_locally(restore.snapshot, provider, log=reporter.log)
    except Exception as exc:
        log.exception("etcd restore %s crashed", restore.pk)
        reporter.flush()
        restore.mark_failed(
            f"The restore stopped on an internal error: {exc.__class__.__name__}: {exc}"
        )
        return restore.status
    finally:
        provider.close()
    reporter.flush()
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
