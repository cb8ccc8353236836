"""Deleting expired backups: storage first, then the row; failures are retried later."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from backups.engine.storage.base import StorageError
from locations.object_lock import Locked

from .jobs import JobRefused, delete_backup
from .models import FINAL_STATUSES, Backup, Schedule
from .retention import TIERS, schedule_plan

log = logging.getLogger(__name__)


@dataclass
class GcResult:
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _dropped_by_tiers(exclude) -> list[Backup]:
    """Backups the retention tiers of their schedules no longer keep (retention.plan)."""
    tiered = Q()
    for tier in TIERS:
        tiered |= Q(**{f"{tier}__gt": 0})
    dropped = []
    for schedule in Schedule.objects.filter(tiered):
        dropped += schedule_plan(schedule).drop
    skip = set(exclude.values_list("pk", flat=True))
    return [backup for backup in dropped if backup.pk not in skip]


def gc_backups(now: datetime | None = None) -> GcResult:
    """Delete every finished backup whose expiry has passed, and those the retention
    tiers of their schedule no longer keep (backups/retention.py).

    A backup whose location cannot be reached keeps its row, with the reason in
    ``error``; the next run (hourly) tries again. Imported backups are read-only:
    whoever wrote them (Velero, another console) expires them; sync then
    removes their entries.
    """
    now = now or timezone.now()
    result = GcResult()
    expired = Backup.objects.filter(
        expires_at__lte=now, status__in=FINAL_STATUSES, source=Backup.Source.CONSOLE
    ).select_related("location", "workspace")
    for backup in [*expired.iterator(), *_dropped_by_tiers(exclude=expired)]:
        try:
            delete_backup(backup)
        except Locked as exc:  # the store would refuse too; deleted once the lock ends
            Backup.objects.filter(pk=backup.pk).update(error=f"Expired, but not deleted: {exc}")
            result.failed[backup.name] = str(exc)
        except (StorageError, JobRefused) as exc:
            reason = (
                f"Expired, but deleting it from {backup.location} failed: {exc} (retried hourly)"
            )
            Backup.objects.filter(pk=backup.pk).update(error=reason)
            result.failed[backup.name] = str(exc)
            log.warning("gc: %s", reason)
        else:
            result.deleted.append(backup.name)
    return result
