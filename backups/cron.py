"""Cron expressions: validation and the next run times, in the console's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from django.conf import settings


def problem(expression: str) -> str | None:
    """Why ``expression`` is not a usable five-field cron expression, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return "Give five fields: minute hour day-of-month month day-of-week (e.g. 0 2 * * *)."
    try:
        croniter(expression)
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        return f"Not a valid cron expression: {exc}"
    return None


def next_runs(expression: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` times strictly after ``after``, evaluated in TIME_ZONE
    (so "0 0 * * *" means local midnight), returned as aware datetimes."""
    zone = ZoneInfo(settings.TIME_ZONE)
    it = croniter(expression, after.astimezone(zone))
    return [it.get_next(datetime) for _ in range(count)]
