"""Celery tasks: thin wrappers that take a primary key, claim the row and call the engine."""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager

from celery import shared_task

from .models import Backup, EtcdSnapshot, Restore, Status

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
PROGRESS_EVERY = 0.5  # seconds between progress writes to the row
LOG_EVERY = 2.0


@shared_task
def fail_stale_operations() -> int:
    """Fail running jobs whose worker stopped sending heartbeats (killed, lost)."""
    failed = sum(model.fail_stale() for model in (Backup, Restore, EtcdSnapshot))
    if failed:
        log.warning("marked %d job(s) failed: their worker stopped sending heartbeats", failed)
    return failed


class RowReporter:
    """Progress and log lines from the engine, written to the row at a bounded rate
    (the engine may report thousands of times a second; the page polls once)."""

    def __init__(self, operation):
        self.operation = operation
        self.lock = threading.Lock()
        self.lines: list[str] = []
        self.last_progress = 0.0
        self.last_log = 0.0

    def progress(self, done: int, total: int, phase: str) -> None:
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            self.operation.beat(items_done=done, items_total=total, phase=phase[:60])

    def log(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
            due = time.monotonic() - self.last_log >= LOG_EVERY
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
            self.last_log = time.monotonic()
        if lines:
            self.operation.append_log("\n".join(lines))


@contextmanager
def heartbeat(operation):
    """Beat every few seconds from a thread, even while the engine waits on I/O."""
    stop = threading.Event()

    def loop():
        while not stop.wait(HEARTBEAT_SECONDS):
            operation.beat()

    thread = threading.Thread(target=loop, name=f"heartbeat-{operation.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


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


class ItemRecorder:
    """Per-item results from the restore engine, saved in batches."""

    def __init__(self, restore):
        self.restore = restore

    def __call__(self, results) -> None:
        from .models import RestoreItem

        RestoreItem.objects.bulk_create(
            [
                RestoreItem(
                    restore_id=self.restore.pk,
                    resource=r.resource[:253],
                    namespace=r.namespace[:253],
                    name=r.name[:253],
                    outcome=r.outcome,
                    message=r.message,
                )
                for r in results
            ],
            batch_size=1000,
        )


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
