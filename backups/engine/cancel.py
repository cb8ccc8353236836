"""Cancellation: the caller's ``should_stop()`` is asked at every safe point of a job
(between pages, tar records, restore groups, snapshot chunks); when it says yes the
engine raises ``Cancelled`` there, removes what it wrote, and ends the job "Cancelled"."""

from __future__ import annotations

from collections.abc import Callable

CANCELLED = "Cancelled"

ShouldStop = Callable[[], bool]


class Cancelled(Exception):  # noqa: N818 (a signal, not an error)
    """``should_stop()`` said yes at a safe point."""


def never() -> bool:
    """The default ``should_stop``: run to the end."""
    return False


def check(should_stop: ShouldStop) -> None:
    """Raise ``Cancelled`` when ``should_stop()`` says so."""
    if should_stop():
        raise Cancelled
