"""Retention tiers on schedules (K10's model), in addition to each backup's TTL.

``keep_last`` keeps the newest N backups. Each other tier keeps, for the newest N
periods (hours, days, ISO weeks, months, years, in UTC) that hold a backup, the
newest backup of that period. A backup any tier keeps stays; the others of the
schedule are deleted by expiry. Only completed console backups take part: running,
failed and imported ones are left to their TTL. A schedule without tiers keeps
everything (until the TTL).

``plan`` is the one rule; the schedule page's preview and expiry both call it, so
the preview shows exactly what expiry then deletes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

TIERS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
WORDS = dict(zip(TIERS, ("last", "hourly", "daily", "weekly", "monthly", "yearly"), strict=True))


def _period(tier: str) -> Callable[[datetime], tuple]:
    return {
        "keep_hourly": lambda t: (t.year, t.month, t.day, t.hour),
        "keep_daily": lambda t: (t.year, t.month, t.day),
        "keep_weekly": lambda t: t.isocalendar()[:2],
        "keep_monthly": lambda t: (t.year, t.month),
        "keep_yearly": lambda t: (t.year,),
    }[tier]


@dataclass(frozen=True)
class Tiers:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    @classmethod
    def of(cls, schedule) -> Tiers:
        return cls(**{tier: getattr(schedule, tier) or 0 for tier in TIERS})

    @property
    def active(self) -> bool:
        return any(getattr(self, tier) for tier in TIERS)

    def describe(self) -> str:
        parts = [f"{getattr(self, t)} {WORDS[t]}" for t in TIERS if getattr(self, t)]
        return "keep " + ", ".join(parts) if parts else "no tiers (the TTL alone)"


@dataclass
class Plan:
    """Which backups the tiers keep (with the tiers that keep each) and which they drop."""

    keep: dict = field(default_factory=dict)  # item -> [tier, ...]
    drop: list = field(default_factory=list)


def plan(items: Iterable, tiers: Tiers, when: Callable = lambda item: item.created_at) -> Plan:
    """Apply ``tiers`` to ``items`` (anything with a time, ``when(item)``)."""
    ordered = sorted(items, key=lambda item: _utc(when(item)), reverse=True)
    result = Plan()
    if not tiers.active:
        result.keep = {item: [] for item in ordered}
        return result
    reasons: dict[int, list[str]] = {}
    for index in range(min(tiers.keep_last, len(ordered))):
        reasons.setdefault(index, []).append("keep_last")
    for tier in TIERS[1:]:
        wanted = getattr(tiers, tier)
        if not wanted:
            continue
        period, seen = _period(tier), set()
        for index, item in enumerate(ordered):  # newest first: the first of a period wins
            key = period(_utc(when(item)))
            if key in seen:
                continue
            if len(seen) == wanted:
                break
            seen.add(key)
            reasons.setdefault(index, []).append(tier)
    for index, item in enumerate(ordered):
        if index in reasons:
            result.keep[item] = reasons[index]
        else:
            result.drop.append(item)
    return result


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def schedule_plan(schedule) -> Plan:
    """The tiers of ``schedule`` applied to its completed console backups now."""
    from .models import Backup, Status

    backups = Backup.objects.filter(
        schedule=schedule, status=Status.COMPLETED, source=Backup.Source.CONSOLE
    ).order_by("-created_at", "-id")
    return plan(list(backups), Tiers.of(schedule))
