"""Confirming a preview: run for real what it showed, once.

Used by the restore page's Confirm button and by ``POST /api/v1/restores/<id>/confirm/``.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from backups.jobs import JobRefused, start_restore
from backups.models import Restore, Status

from .models import ConfirmedPreview

# The options a confirmed restore copies from its preview.
OPTION_FIELDS = (
    "include_namespaces",
    "exclude_namespaces",
    "namespace_mapping",
    "include_resources",
    "exclude_resources",
    "label_selector",
    "cluster_resources",
    "restore_pvs",
    "preserve_node_ports",
    "existing_policy",
)


def confirm_preview(preview: Restore, by) -> tuple[Restore, bool]:
    """The restore this preview's confirmation started, and whether this call started
    it (False: it was confirmed before, and that restore is returned).

    The caller has fetched ``preview`` through ``restrict()`` and checked that ``by``
    may restore into its target. Raises JobRefused when it cannot be run.
    """
    earlier = _earlier(preview)
    if earlier is not None:
        return earlier, False
    if preview.backup is None or preview.target_cluster is None:
        raise JobRefused("The backup or the target cluster is gone; start a new restore.")
    if preview.status != Status.COMPLETED:
        raise JobRefused("The preview has not completed; confirm it once it has.")
    try:
        with transaction.atomic():
            restore = start_restore(
                preview.backup,
                preview.target_cluster,
                by=by,
                **{name: getattr(preview, name) for name in OPTION_FIELDS},
            )
            ConfirmedPreview.objects.create(preview=preview, restore=restore)
    except IntegrityError:
        # Confirmed at the same moment by another request: its restore stands, and
        # this one's row (and its queued task) went with the rolled-back savepoint.
        earlier = _earlier(preview)
        if earlier is None:
            raise
        return earlier, False
    return restore, True


def _earlier(preview: Restore) -> Restore | None:
    link = ConfirmedPreview.objects.filter(preview=preview).select_related("restore").first()
    return link.restore if link else None
