"""The lifecycle every job shares: backups, restores, etcd snapshots and etcd restores.

A kind subclasses ``Job`` (its model, task, engine call); ``Job`` does the rest:
``create`` (row, audit, task queued on commit), ``run`` (claim, heartbeat,
progress, ONE ``try`` around everything after the claim, one ``Outcome``,
follow-up), ``cancel`` (a pending job ends at once, a running one at its next
safe point, after removing what it wrote) and the reaping of lost rows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from celery import current_app, current_task
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from backups.engine.storage.base import Provider, StorageError
from locations.providers import RefusedProvider, get_provider
from workspaces import audit
from workspaces.access import can

from ..models import ACTIVE_STATUSES, Operation, Status

log = logging.getLogger(__name__)

# Sent once per job that reaches a final status, by ``execute`` or by a reaper,
# after the row is saved: ``sender`` is the Job class, ``row`` the final row.
# Receivers (notifications) must not raise; the job is already over.
job_finished = Signal()

PROGRESS_EVERY = 0.5  # seconds between progress writes to the row
LOG_EVERY = 2.0  # seconds between log writes to the row


class JobRefused(ValueError):
    """The job cannot start (or be cancelled); the message says why, for a person."""


class JobFailed(Exception):
    """Ends the job Failed; the message is the reason shown to people."""


class JobCancelled(BaseException):
    """Raised from the engine's callbacks once the job must stop.

    A BaseException, like KeyboardInterrupt: the engines turn every Exception
    into a Failed outcome, and this one must unwind them instead (closing their
    writers, which aborts partial uploads) up to ``Job.execute``.
    """


@dataclass
class Outcome:
    """How a job ended: its final status, the reason when it did not complete, and
    the row fields the kind measured (counters, sizes, checksums)."""

    status: str
    error: str = ""
    fields: dict = field(default_factory=dict)


class RowReporter:
    """Progress and log lines from the engine, written to the row at a bounded rate
    (the engine may report thousands of times a second; the page polls once)."""

    def __init__(self, row: Operation):
        self.row = row
        self.lock = threading.Lock()
        self.lines: list[str] = []
        self.last_progress = 0.0
        self.last_log = 0.0

    def progress(self, done: int, total: int, phase: str) -> None:
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            self.row.beat(items_done=done, items_total=total, phase=phase[:60])

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
            self.row.append_log("\n".join(lines))


def worker_name() -> str:
    """Who runs the job: the Celery worker's node name (w1@host) and the process."""
    node = getattr(current_task.request, "hostname", None) if current_task else None
    return f"{node or socket.gethostname()} pid {os.getpid()}"


@contextmanager
def heartbeat(row: Operation):
    """Beat from a thread, even while the engine waits on I/O: every quarter of the
    timeout (three beats may be lost before the row is failed), at most every 15 s."""
    stop = threading.Event()

    def loop():
        try:
            while not stop.wait(min(15.0, settings.OPERATION_HEARTBEAT_TIMEOUT / 4)):
                try:
                    row.beat()
                except DatabaseError as exc:  # one lost beat; the next one may pass
                    log.warning("heartbeat of %s %s failed: %s", row._meta.model_name, row.pk, exc)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=loop, name=f"heartbeat-{row.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class Job:
    """One kind of work. Subclasses set the class attributes and write ``work``."""

    model: type[Operation]
    kind: str  # the registry's key and the cancel URL's
    noun: str  # "backup", in messages for people
    task_name: str  # the Celery task that runs it: a one-line call of ``run``
    related: tuple[str, ...] = ()  # select_related for the worker
    cluster_field: str = "cluster"  # the cluster whose rules apply
    start_action: str  # who may start it (and so cancel it)
    stops_while_running: bool = True  # False: a running one cannot be cancelled
    stop_check_every: float = 1.0  # seconds between reads of the row's cancel request
    template: str  # the job's page; its "progress" partial is the polled status
    context_name: str  # the row's name in that template

    def __init__(self, row: Operation):
        self.row = row
        self.reporter = RowReporter(row)
        self.provider: Provider | None = None
        self._stop = False
        self._checked = 0.0

    # Starting ------------------------------------------------------------------------

    @classmethod
    def create(cls, by, audit_action: str = "", audit_detail: dict | None = None, **fields):
        """The pending row and its audit event; the task is queued after commit."""
        with transaction.atomic():
            row = cls.model(created_by=audit.signed_in(by), **fields)
            row.save()
            if audit_action:
                audit.record(by, audit_action, row, **(audit_detail or {}))
            cls.queue(row.pk)
        return row

    @classmethod
    def queue(cls, pk: int) -> None:
        """Send the task once the current transaction commits (at once outside one),
        by name: the job modules never import the tasks that import them."""
        transaction.on_commit(lambda: current_app.tasks[cls.task_name].delay(pk))

    # Running -------------------------------------------------------------------------

    @classmethod
    def run(cls, pk: int) -> str:
        """Claim and run one row. Safe to deliver twice: only the claim winner works."""
        row = cls.model.objects.select_related(*cls.related).filter(pk=pk).first()
        if row is None or not row.claim(worker=worker_name()):
            return "skipped"
        return cls(row).execute()

    def execute(self) -> str:
        try:
            outcome = self._outcome()
            if self.row.finish(outcome.status, error=outcome.error, **outcome.fields):
                job_finished.send_robust(type(self), row=self.row)
            try:
                self.after(outcome)
            except Exception as exc:  # the row has its status; say what did not follow
                log.exception("follow-up of %s %s failed", self.noun, self.row.pk)
                self.row.append_log(f"After the {self.noun}: {exc.__class__.__name__}: {exc}")
        finally:
            if self.provider is not None:
                self.provider.close()
        return self.row.status

    def _outcome(self) -> Outcome:
        """Everything between the claim and the final status, in one ``try``."""
        try:
            with heartbeat(self.row):
                self.check_stop()
                self.provider = get_provider(self.location())
                if isinstance(self.provider, RefusedProvider):  # fail at once, with why
                    raise self.provider.error
                outcome = self.work()
            if outcome.status == Status.CANCELLED:  # an engine that stopped on should_stop
                raise JobCancelled
            return outcome
        except JobCancelled:
            return self._cancelled()
        except JobFailed as exc:
            return Outcome(Status.FAILED, str(exc))
        except StorageError as exc:
            return Outcome(Status.FAILED, f"The location cannot be used: {exc}")
        except Exception as exc:
            log.exception("%s %s crashed", self.noun, self.row.pk)
            return Outcome(
                Status.FAILED,
                f"The {self.noun} stopped on an internal error: {exc.__class__.__name__}: {exc}",
            )
        finally:
            self.reporter.flush()

    def _cancelled(self) -> Outcome:
        self.reporter.log(f"Cancelled: removing what the {self.noun} wrote.")
        try:
            if self.provider is not None:
                self.clean_up()
        except StorageError as exc:
            self.reporter.log(f"Could not remove everything it wrote: {exc}")
        return Outcome(Status.CANCELLED, f"Cancelled; what the {self.noun} had written is removed.")

    # The callbacks the engine gets -----------------------------------------------------

    def should_stop(self) -> bool:
        """True once the job was cancelled, or ended by someone else (staff, the
        stale check): the work should stop at its next safe point. Reads the
        row at most once a second."""
        now = time.monotonic()
        if not self._stop and now - self._checked >= self.stop_check_every:
            self._checked = now
            row = self.model.objects.filter(pk=self.row.pk)
            self._stop = row.exclude(status=Status.RUNNING, cancel_requested=False).exists()
        return self._stop

    def check_stop(self) -> None:
        if self.should_stop():
            raise JobCancelled

    def progress(self, done: int, total: int, phase: str) -> None:
        """The engine's progress callback (the engine asks ``should_stop`` at its safe
        points, and removes what it wrote when told to stop)."""
        self.reporter.progress(done, total, phase)

    # What each kind provides -----------------------------------------------------------

    cluster_gone = ""  # why the job fails when its row's cluster is gone

    def location(self):
        """The location the work reads or writes; raise JobFailed when its inputs are gone
        (by default: the row's cluster, then its location)."""
        if self.row.cluster is None:
            raise JobFailed(self.cluster_gone)
        return self.row.location

    def work(self) -> Outcome:
        """Call the engine (``self.provider`` is ready) and say how it ended."""
        raise NotImplementedError

    def clean_up(self) -> None:
        """Remove what a cancelled run wrote to ``self.provider``."""

    def after(self, outcome: Outcome) -> None:
        """Follow-up once the row is final (audit, retention, policy result)."""

    # Cancelling ----------------------------------------------------------------------

    @classmethod
    def scope(cls, row: Operation):
        """The cluster (or, once it is gone, the workspace) whose rules apply."""
        return getattr(row, cls.cluster_field) or row.workspace

    @classmethod
    def page_context(cls, user, row: Operation) -> dict:
        """What the job's page (and its polled status) shows beside the row."""
        return {cls.context_name: row, "can_cancel": cls.may_cancel(user, row)}

    @classmethod
    def may_cancel(cls, user, row: Operation) -> bool:
        if row.status not in ACTIVE_STATUSES or row.cancel_requested:
            return False
        if row.status == Status.RUNNING and not cls.stops_while_running:
            return False
        return can(user, cls.start_action, cls.scope(row))

    @classmethod
    def cancel(cls, row: Operation, by=None) -> str:
        """End a pending job now, or ask a running one to stop. Returns what happened."""
        same = cls.model.objects.filter(pk=row.pk)
        now = timezone.now()
        if same.filter(status=Status.PENDING).update(
            status=Status.CANCELLED, finished_at=now, error="Cancelled before it started."
        ):
            message = f"The {cls.noun} was cancelled before it started."
        elif not cls.stops_while_running and same.filter(status=Status.RUNNING).exists():
            raise JobRefused(f"A running {cls.noun} cannot be stopped midway; wait for its end.")
        elif same.filter(status=Status.RUNNING).update(cancel_requested=True):
            name = audit.signed_in(by).get_username() if audit.signed_in(by) else "the system"
            row.append_log(f"Cancel requested by {name}.")
            message = f"The {cls.noun} stops at its next safe point and removes what it wrote."
        else:
            raise JobRefused(f"The {cls.noun} has already ended.")
        row.refresh_from_db()
        audit.record(by, "cancelled", row)
        return message

    # Reaping -------------------------------------------------------------------------

    @classmethod
    def reap_stale(cls, now=None) -> int:
        """Fail running rows whose worker stopped sending heartbeats (killed, lost)."""
        now = now or timezone.now()
        timeout = settings.OPERATION_HEARTBEAT_TIMEOUT
        cutoff = now - timedelta(seconds=timeout)
        stale = cls.model.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff)
        pks = list(stale.values_list("pk", flat=True))
        failed = stale.filter(pk__in=pks).update(
            status=Status.FAILED,
            finished_at=now,
            error=(
                f"The worker stopped reporting progress for more than {timeout} seconds "
                "(it was probably stopped or killed). Start the job again."
            ),
        )
        cls._announce(pks, now)
        return failed

    @classmethod
    def reap_unclaimed(cls, now=None, workers_busy: bool = False) -> int:
        """Pending rows no worker claimed within the pending timeout: the broker
        message may be lost (a broker restart, a queue wiped, the broker down when
        the row committed). Each is queued again once (a duplicate is harmless:
        the claim skips it); still unclaimed one timeout later, it is failed, so
        it never blocks its schedule, etcd policy or etcd restore. While workers
        move through the queue (``busy``) a long wait is expected: nothing is failed."""
        now = now or timezone.now()
        timeout = settings.OPERATION_PENDING_TIMEOUT
        cutoff = now - timedelta(seconds=timeout)
        pending = cls.model.objects.filter(status=Status.PENDING)
        requeued = 0
        for pk in pending.filter(created_at__lt=cutoff, requeued_at__isnull=True).values_list(
            "pk", flat=True
        ):
            if pending.filter(pk=pk, requeued_at__isnull=True).update(requeued_at=now):
                cls.queue(pk)
                requeued += 1
        failed = 0
        if not workers_busy:
            pks = list(pending.filter(requeued_at__lt=cutoff).values_list("pk", flat=True))
            failed = pending.filter(pk__in=pks, requeued_at__lt=cutoff).update(
                status=Status.FAILED,
                finished_at=now,
                error=(
                    f"No worker started this {cls.noun} within {2 * timeout} seconds, though it "
                    "was queued twice (no worker is running, or the broker lost its message). "
                    "Start it again once a worker runs."
                ),
            )
            cls._announce(pks, now)
        return requeued + failed

    @classmethod
    def _announce(cls, pks: list[int], now) -> None:
        """``job_finished`` for the rows a reaper failed just now (its UPDATE wrote
        ``finished_at=now``; a row that ended otherwise in between is not one)."""
        rows = cls.model.objects.select_related(*cls.related)
        for row in rows.filter(pk__in=pks, status=Status.FAILED, finished_at=now):
            job_finished.send_robust(cls, row=row)

    @classmethod
    def busy(cls, now=None) -> bool:
        """Are workers moving through the queue: one of these rows running (a fresh
        heartbeat) or claimed within the pending timeout?"""
        now = now or timezone.now()
        alive = now - timedelta(seconds=settings.OPERATION_HEARTBEAT_TIMEOUT)
        recent = now - timedelta(seconds=settings.OPERATION_PENDING_TIMEOUT)
        rows = cls.model.objects
        return rows.filter(status=Status.RUNNING, heartbeat_at__gte=alive).exists() or (
            rows.filter(started_at__gte=recent).exists()
        )
