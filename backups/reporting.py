"""Reporting a job's progress to its row: bounded-rate progress and log, a heartbeat,
and the per-item results of a restore."""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15
PROGRESS_EVERY = 0.5  # seconds between progress writes to the row
LOG_EVERY = 2.0


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


def claimed(queryset, pk: int):
    """The job row, if this worker wins its claim (None when missing or taken)."""
    job = queryset.filter(pk=pk).first()
    if job is None or not job.claim(worker=socket.gethostname()):
        return None
    return job


@contextmanager
def job_frame(job, location, what: str):
    """The frame every job's work runs in: a provider for ``location``, a reporter
    and a heartbeat. An unexpected exception (a bug, not a cluster or store
    failure, which the engines report themselves) fails the job with its reason
    and ends here: the row says what happened, the task ends normally."""
    from locations.providers import get_provider

    reporter = RowReporter(job)
    provider = get_provider(location)
    try:
        with heartbeat(job):
            yield provider, reporter
    except Exception as exc:
        log.exception("%s %s crashed", what, job.pk)
        reporter.flush()
        job.mark_failed(f"The {what} stopped on an internal error: {exc.__class__.__name__}: {exc}")
    finally:
        reporter.flush()
        provider.close()
