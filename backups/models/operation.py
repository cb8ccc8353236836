"""The shape shared by every long-running job: backups, restores, etcd snapshots.

A job is a row. The page reads the row; Celery's result backend is never read.
The worker claims the row with a conditional UPDATE, moves counters and a
heartbeat while it works, and writes the final status. ``backups/jobs/`` owns
the lifecycle around these primitives (including reaping lost rows).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models.functions import Concat, Right
from django.utils import timezone

from palette_site.model_fields import user_field

from ..charts import seconds_text

# The log column keeps the most recent part of a job's log; the full log of a
# backup also goes to its location next to the archive, as Velero does.
LOG_TAIL_CHARS = 200_000


class Status(models.TextChoices):
    # Row created and the task queued after commit; no worker has it yet.
    PENDING = "pending", "Pending"
    # A worker claimed it (pending -> running in one UPDATE); heartbeat_at moves.
    RUNNING = "running", "Running"
    # Finished with every item done.
    COMPLETED = "completed", "Completed"
    # Finished, but some items failed; the reasons are in the log and results.
    PARTIALLY_FAILED = "partially_failed", "Partially failed"
    # Stopped: the cluster or store was unreachable, the worker died, or staff
    # marked it failed. ``error`` says which.
    FAILED = "failed", "Failed"
    # Someone cancelled it: a pending job ends at once, a running one at its next
    # safe point, after removing what it had written.
    CANCELLED = "cancelled", "Cancelled"


FINAL_STATUSES = (Status.COMPLETED, Status.PARTIALLY_FAILED, Status.FAILED, Status.CANCELLED)
ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)


class Operation(models.Model):
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    phase = models.CharField(max_length=60, blank=True, help_text="What the worker is doing now")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = user_field()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    requeued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the stale check queued it again, unclaimed"
    )

    class Meta:
        abstract = True

    @property
    def is_done(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def progress_percent(self) -> int:
        if self.status == Status.COMPLETED:
            return 100
        if not self.items_total:
            return 0
        return min(100, int(100 * self.items_done / self.items_total))

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def elapsed(self) -> timedelta | None:
        """How long it has run (until now while it runs, until its end after)."""
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def remaining(self) -> timedelta | None:
        """A straight-line estimate of the time left from the items done so far (None
        before the first item, or when the total is not known)."""
        elapsed = self.elapsed
        if self.is_done or not elapsed or not self.items_done or not self.items_total:
            return None
        left = max(self.items_total - self.items_done, 0)
        return elapsed * left / self.items_done

    @property
    def duration_text(self) -> str:
        """ "0.2 s", "4 min 5 s", "1 h 2 min": for people."""
        if self.duration is None:
            return ""
        return seconds_text(self.duration.total_seconds())

    def _same_row(self) -> models.QuerySet:
        return type(self)._default_manager.filter(pk=self.pk)

    def claim(self, worker: str = "") -> bool:
        """Take the job for this worker. True only for the one caller that wins.

        Celery may deliver a task twice (acks_late, a redelivery after a worker
        restart); the conditional UPDATE makes sure only one run does the work.
        """
        now = timezone.now()
        won = (
            self._same_row()
            .filter(status=Status.PENDING)
            .update(status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200])
        )
        if won:
            self.refresh_from_db()
        return bool(won)

    def beat(self, **fields) -> None:
        """Save progress (counters, phase) and prove the worker is alive."""
        fields["heartbeat_at"] = timezone.now()
        self._same_row().filter(status=Status.RUNNING).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)

    def append_log(self, text: str) -> None:
        """Add lines to the log tail in the database without reading the row."""
        line = text if text.endswith("\n") else text + "\n"
        self._same_row().update(
            log=Right(Concat(models.F("log"), models.Value(line)), LOG_TAIL_CHARS)
        )

    def finish(self, status: str, error: str = "", **fields) -> bool:
        """Record the final status, unless the job already ended (e.g. staff failed it)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final status")
        now = timezone.now()
        done = (
            self._same_row()
            .filter(status__in=ACTIVE_STATUSES)
            .update(status=status, error=error, finished_at=now, heartbeat_at=now, **fields)
        )
        self.refresh_from_db()
        return bool(done)

    def mark_failed(self, reason: str) -> bool:
        """Fail a job that has not finished; used by staff and by the stale check."""
        return self.finish(Status.FAILED, error=reason)
