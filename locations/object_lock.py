"""Immutable backups: S3 Object Lock (AWS S3, MinIO) on a location.

A locking location writes every object of a backup once, with the location's mode
(compliance or governance) and a retain-until date; the bucket itself then
refuses to delete those object versions before that date. The console refuses
earlier, with the date, wherever a backup can be deleted (page, command, admin,
expiry), all through ``refuse_early_delete``.

Stores keep retain-until dates in whole seconds, so the console rounds its dates
up to the next second: the date it shows is never earlier than the store's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from backups.engine.storage.base import StorageError


class Locked(StorageError):
    """A delete refused because the objects are still locked."""

    reason = "locked"


@dataclass(frozen=True)
class Retention:
    mode: str  # "compliance" or "governance"
    until: datetime

    @property
    def header_mode(self) -> str:
        return self.mode.upper()


@dataclass(frozen=True)
class BucketLock:
    """What a bucket says about object lock: enabled, and its default rule if any."""

    enabled: bool
    mode: str = ""  # lower case, "" without a default rule
    days: int = 0


def ceil_second(moment: datetime) -> datetime:
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def retention_for(location, start: datetime | None = None) -> Retention | None:
    """The retention a backup starting at ``start`` gets under ``location`` (None: no lock)."""
    if not location.locks:
        return None
    start = start or timezone.now()
    return Retention(
        location.object_lock_mode, ceil_second(start + timedelta(days=location.object_lock_days))
    )


def when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def refuse_early_delete(backup, now: datetime | None = None) -> None:
    """Raise Locked, with the date deleting becomes possible, while the backup is locked."""
    now = now or timezone.now()
    if backup.locked_until and backup.locked_until > now:
        raise Locked(
            f"Backup {backup.name} is locked by its location's object lock until "
            f"{when(backup.locked_until)}; it can be deleted from then on."
        )


def bucket_problem(location, bucket: BucketLock) -> tuple[str, str]:
    """(error, warning) comparing the bucket's lock settings with the location's."""
    if not location.locks:
        return "", ""
    if not bucket.enabled:
        return (
            f"Bucket '{location.bucket}' does not have object lock enabled, but the location "
            "requires it: create the bucket with object lock, or turn the location's lock off",
            "",
        )
    if bucket.mode and (
        bucket.mode != location.object_lock_mode or bucket.days != location.object_lock_days
    ):
        return "", (
            f"The bucket's default retention ({bucket.mode}, {bucket.days} days) differs from "
            f"the location's ({location.object_lock_mode}, {location.object_lock_days} days): "
            "the console sets each object's retention itself, so the location's applies."
        )
    return "", ""
