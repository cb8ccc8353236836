"""Cron expressions: validation and the next run times, in the console's time zone.

An expression is refused when it is malformed, when it never fires (``0 0 31 2 *``),
or when it fires more often than the server's minimum interval
(``PALETTE_MIN_SCHEDULE_INTERVAL``), so a tenant cannot make the workers back up
every minute. Evaluating a stored expression never raises: one bad schedule must
not stop the ticker for the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter
from django.conf import settings
from django.utils import timezone

MAX_LENGTH = 100  # the model fields' length
# Runs looked at to find the shortest gap (enough for every minute/hour pattern).
_SAMPLE = 60


def _minimum() -> timedelta:
    return getattr(settings, "MIN_SCHEDULE_INTERVAL", timedelta(hours=1))


def _describe(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def problem(expression: str, *, check_interval: bool = True) -> str | None:
    """Why ``expression`` is not a usable five-field cron expression, or None."""
    if len(expression) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not expression.isprintable():
        return "Use printable characters only."
    fields = expression.split()
    if len(fields) != 5:
        return "Give five fields: minute hour day-of-month month day-of-week (e.g. 0 2 * * *)."
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError, TypeError, OverflowError) as exc:
        return f"Not a valid cron expression: {exc}"
    runs = next_runs(expression, timezone.now(), _SAMPLE)
    if not runs:
        return "It never runs: no date matches (e.g. the 31st of February)."
    if check_interval and len(runs) > 1:
        gap = min(later - earlier for earlier, later in zip(runs, runs[1:], strict=False))
        if gap < _minimum():
            return (
                f"It runs every {_describe(gap)}; this server allows at most one run every "
                f"{_describe(_minimum())} (PALETTE_MIN_SCHEDULE_INTERVAL)."
            )
    return None


def next_runs(expression: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` times strictly after ``after``, evaluated in TIME_ZONE
    (so "0 0 * * *" means local midnight), returned as aware datetimes.

    Fewer (or none) when the expression runs out of dates or is not valid: a stored
    expression is never trusted to be good.
    """
    zone = ZoneInfo(settings.TIME_ZONE)
    runs: list[datetime] = []
    try:
        it = croniter(expression, after.astimezone(zone))
        for _ in range(count):
            runs.append(it.get_next(datetime))
    except (CroniterError, ValueError, KeyError, TypeError, OverflowError):
        pass
    return runs


def next_run(expression: str, after: datetime) -> datetime | None:
    """The next time, or None when there is none."""
    runs = next_runs(expression, after, 1)
    return runs[0] if runs else None
