"""What every job of the engine shares: its log, its throttled progress, cancellation.

The caller's ``should_stop()`` is asked at every safe point of a job (between pages,
tar records, restore groups, snapshot chunks); when it says yes the engine raises
``Cancelled`` there, removes what it wrote, and ends the job "Cancelled".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from backups.engine.velero.format import LogBuffer

logger = logging.getLogger(__name__)

CANCELLED = "Cancelled"
PROGRESS_INTERVAL = 0.25  # seconds between progress callbacks

ShouldStop = Callable[[], bool]


class Cancelled(Exception):  # noqa: N818 (a signal, not an error)
    """``should_stop()`` said yes at a safe point."""


def never() -> bool:
    """The default ``should_stop``: run to the end."""
    return False


class Executor:
    """The reporting half of a backup or restore run: ``log()`` keeps Velero's log and
    calls back; ``progress()`` calls back with ``done``/``total`` a few times a second
    (at once for a new phase). A broken callback is logged, never breaks the job."""

    def __init__(self, progress, log, should_stop: ShouldStop = never):
        self._progress_cb, self._log_cb, self.should_stop = progress, log, should_stop
        self.logbuf = LogBuffer()
        self.phase_text = "Starting"
        self.done = self.total = 0
        self._last_progress = 0.0

    def log(self, message: str, level: str = "info") -> None:
        line = self.logbuf.add(level.upper(), message)
        try:
            self._log_cb(line)
        except Exception:
            logger.exception("log callback failed")

    def progress(self, phase: str | None = None, force: bool = False) -> None:
        if phase:
            self.phase_text, force = phase, True
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            try:
                self._progress_cb(self.done, max(self.total, self.done), self.phase_text)
            except Exception:
                logger.exception("progress callback failed")

    def stop_here(self) -> None:
        """A safe point: raise ``Cancelled`` when ``should_stop()`` says so."""
        if self.should_stop():
            raise Cancelled
