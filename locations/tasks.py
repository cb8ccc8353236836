"""Periodic revalidation of every location."""

from __future__ import annotations

import logging

from celery import shared_task

from .models import BackupLocation
from .validation import validate_and_record

log = logging.getLogger(__name__)


@shared_task
def revalidate_locations() -> int:
    """Check every location; returns how many are unavailable. One failing store
    never stops the others from being checked."""
    unavailable = 0
    for location in BackupLocation.objects.all().iterator():
        result = validate_and_record(location)
        if not result.ok:
            unavailable += 1
            log.warning("location %s is unavailable: %s", location.name, result.message)
    return unavailable
