"""Saving a location after validation, the one path for pages and commands."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from workspaces import audit

from .models import BackupLocation


def status_text(result) -> str:
    """What the status line says: the result, then any warning (Velero's view of it)."""
    return " ".join([result.message, *result.warnings]).strip()


@transaction.atomic
def save_location(location: BackupLocation, result, by=None) -> BackupLocation:
    """Store the location with the outcome of its validation.

    Making it the default of its workspace takes the flag from the previous
    default in the same transaction (the database allows one default each).
    """
    from .placement import check

    check(location)  # again, inside the transaction: nothing overlapping slipped in meanwhile
    created = location.pk is None
    location.status = (
        BackupLocation.Status.AVAILABLE if result.ok else BackupLocation.Status.UNAVAILABLE
    )
    location.status_message = status_text(result)
    location.last_validated_at = timezone.now()
    if location.is_default and location.workspace_id:
        BackupLocation.objects.filter(workspace_id=location.workspace_id, is_default=True).exclude(
            pk=location.pk
        ).update(is_default=False)
    if created and audit.signed_in(by):
        location.created_by = by
    location.save()
    audit.record(
        by,
        "created" if created else "changed",
        location,
        provider=location.provider,
        status=location.status,
    )
    return location
