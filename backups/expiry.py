"""Deleting expired backups: storage first, then the row; failures are retried later."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from backups.engine.storage.base import StorageError

from .jobs import JobRefused, delete_backup
from .models import FINAL_STATUSES, Backup

log = logging.getLogger(__name__)


@dataclass
class GcResult:
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def gc_backups(now: datetime | None = None) -> GcResult:
    """Delete every finished backup whose expiry has passed.

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
    for backup in expired.iterator():
        try:
            delete_backup(backup)
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
