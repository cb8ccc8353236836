"""The schedule calendar: the runs of a week or a month, by day, compact.

It never stops silently: each day shows at most ``PER_DAY`` runs and says how many
more it has, a schedule with more runs in the period than ``PER_SCHEDULE`` says so,
and paused schedules are counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from . import cron

PER_DAY = 8  # runs listed in a day's cell; the rest are counted
PER_SCHEDULE = 800  # runs of one schedule worked out per period (hourly for a month: 744)
VIEWS = {"week", "month"}


@dataclass
class Day:
    day: date
    runs: list = field(default_factory=list)  # (when, schedule), soonest first
    in_period: bool = True  # False for the days a month grid shows from its neighbours

    @property
    def shown(self) -> list:
        return self.runs[:PER_DAY]

    @property
    def more(self) -> int:
        return max(len(self.runs) - PER_DAY, 0)


@dataclass
class Period:
    view: str
    start: date
    end: date  # exclusive
    days: list[Day]
    previous: date
    next: date
    total: int = 0
    paused: int = 0
    capped: list = field(default_factory=list)  # schedules with more runs than worked out

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def hidden(self) -> int:
        return sum(d.more for d in self.days)


def period_of(view: str, around: date) -> tuple[date, date, date, date]:
    """(start, end, previous start, next start) of the week (Monday first) or month."""
    if view == "week":
        start = around - timedelta(days=around.weekday())
        return (
            start,
            start + timedelta(days=7),
            start - timedelta(days=7),
            start + timedelta(days=7),
        )
    start = around.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    previous = (start - timedelta(days=1)).replace(day=1)
    return start, end, previous, end


def build(schedules, view: str, around: date, now: datetime | None = None) -> Period:
    """The runs of ``schedules`` (the user's, already filtered) in the period around a day;
    runs in the past are left out (the calendar shows what will happen)."""
    now = now or timezone.now()
    start, end, previous, following = period_of(view, around)
    first = timezone.make_aware(datetime.combine(start, time.min))
    last = timezone.make_aware(datetime.combine(end, time.min))
    days = {
        start + timedelta(days=i): Day(start + timedelta(days=i)) for i in range((end - start).days)
    }
    period = Period(view, start, end, [], previous, following)
    for schedule in schedules:
        if schedule.paused:
            period.paused += 1
            continue
        if not schedule.expression:
            continue
        # next_runs is strictly after its start: a second earlier keeps a run at 00:00.
        after = max(first - timedelta(seconds=1), now)
        runs = cron.next_runs(schedule.expression, after, PER_SCHEDULE)
        for when in runs:
            if when >= last:
                break
            days[timezone.localtime(when).date()].runs.append((when, schedule))
            period.total += 1
        else:
            if len(runs) == PER_SCHEDULE:
                period.capped.append(schedule)
    for day in days.values():
        day.runs.sort(key=lambda entry: (entry[0], entry[1].prefix))
    period.days = _grid(view, list(days.values()))
    return period


def _grid(view: str, days: list[Day]) -> list[Day]:
    """A month padded to whole weeks (Monday first), so it reads as a calendar."""
    if view == "week" or not days:
        return days
    before = [
        Day(days[0].day - timedelta(days=i), in_period=False)
        for i in range(days[0].day.weekday(), 0, -1)
    ]
    after = [
        Day(days[-1].day + timedelta(days=i), in_period=False)
        for i in range(1, 7 - days[-1].day.weekday())
    ]
    return before + days + after
