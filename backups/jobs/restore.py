"""Restores as jobs: starting one (or its dry-run preview) and running it."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from workspaces import audit
from workspaces.access import can
from workspaces.models import Cluster
from workspaces.roles import Action

from ..engine.restore.run import run_restore as engine_run_restore
from ..engine_inputs import restore_request
from ..models import Backup, Restore, RestoreItem, Status
from .backup import PHASE_STATUS
from .base import Job, JobFailed, JobRefused, Outcome
from .volumes import VolumeRecorder


class RestoreJob(Job):
    model = Restore
    kind = "restore"
    noun = "restore"
    task_name = "backups.tasks.run_restore"
    related = ("backup__location", "target_cluster")
    cluster_field = "target_cluster"
    start_action = Action.RESTORE
    template, context_name = "backups/restore_detail.html", "restore"

    def location(self):
        if self.row.backup is None or self.row.target_cluster is None:
            raise JobFailed("The backup or the target cluster was removed before the restore ran.")
        return self.row.backup.location

    def engine(self):
        """The one engine call; it stops at its next safe point once ``should_stop``."""
        recorder = VolumeRecorder("restore", self.row)
        return engine_run_restore(
            restore_request(self.row, self.provider),
            progress=self.progress,
            log=self.reporter.log,
            record=self.record,
            should_stop=self.should_stop,
            volume=recorder.volume,
            hook=recorder.hook,
        )

    def record(self, results) -> None:
        """Per-item results from the engine, saved in batches."""
        RestoreItem.objects.bulk_create(
            [
                RestoreItem(
                    restore_id=self.row.pk,
                    resource=r.resource[:253],
                    namespace=r.namespace[:253],
                    name=r.name[:253],
                    outcome=r.outcome,
                    message=r.message,
                )
                for r in results
            ],
            batch_size=1000,
        )

    def work(self) -> Outcome:
        outcome = self.engine()
        return Outcome(PHASE_STATUS[outcome.phase], outcome.error, dict(
            items_done=outcome.total, items_total=outcome.total, created_count=outcome.created,
            updated_count=outcome.updated, skipped_count=outcome.skipped,
            failed_count=outcome.failed, warnings_count=outcome.warnings, phase=outcome.phase,
        ))  # fmt: skip

    def after(self, outcome: Outcome) -> None:
        if outcome.fields and not self.row.is_preview:
            audit.record(
                self.row.created_by, "restored", self.row, result=outcome.fields["phase"],
                created=outcome.fields["created_count"],
            )  # fmt: skip

    @classmethod
    def page_context(cls, user, row: Restore) -> dict:
        context = super().page_context(user, row)
        if not row.is_preview:
            return context
        confirmed = confirmed_restore(row)
        stale = "" if confirmed else stale_reason(row)
        may_restore = row.target_cluster is not None and can(
            user, Action.RESTORE, row.target_cluster
        )
        usable = row.is_done and row.status not in (Status.FAILED, Status.CANCELLED)
        return {
            **context,
            "confirmed_restore": confirmed,
            "stale_reason": stale,
            "can_confirm": usable and may_restore and not confirmed and not stale,
            "can_rerun": row.is_done and may_restore and not confirmed and row.backup is not None,
        }


# What a preview decided, copied as they are onto the restore that confirms it (and
# onto a preview run again). Fields other parts add to the wizard belong here too.
PREVIEW_OPTIONS = (
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
    "option_warnings",
    "storage_class_mapping",
    "modifier_set",
    "resource_modifiers",
    "chosen_items",
)

# A preview older than this no longer says what a restore would do: the cluster moved on.
PREVIEW_FRESH_FOR = timedelta(minutes=60)


def preview_options(preview: Restore) -> dict:
    return {name: getattr(preview, name) for name in PREVIEW_OPTIONS}


def confirmed_restore(preview: Restore) -> Restore | None:
    """The restore that confirmed this preview, if one did."""
    return Restore.objects.filter(from_preview=preview).first()


def stale_reason(preview: Restore, now=None) -> str:
    """Why a finished preview no longer predicts a restore ("" while it still does):
    it is older than PREVIEW_FRESH_FOR, or another restore went into its cluster since."""
    if not preview.is_done:
        return ""
    now = now or timezone.now()
    ended = preview.finished_at or preview.created_at
    if now - ended > PREVIEW_FRESH_FOR:
        minutes = int(PREVIEW_FRESH_FOR.total_seconds() // 60)
        return f"This preview is more than {minutes} minutes old; the cluster may have changed."
    newer = (
        Restore.objects.filter(
            target_cluster_id=preview.target_cluster_id,
            is_preview=False,
            created_at__gt=preview.created_at,
        )
        .exclude(from_preview=preview)
        .order_by("-created_at")
        .first()
    )
    if preview.target_cluster_id and newer:
        return (
            f"Restore {newer.name} went into {preview.target_cluster_name} after this preview, "
            "so its numbers are out of date."
        )
    return ""


def confirm_preview(preview: Restore, *, by, options: dict | None = None) -> tuple[Restore, bool]:
    """Start the restore a finished preview showed, once: ``(restore, started)``.

    A preview confirmed before (a second click, a page left open, a double POST)
    gives its restore and ``started=False``; the unique ``from_preview`` column makes
    that hold also when two requests race. ``options`` adds Restore fields beyond the
    preview's own (PREVIEW_OPTIONS). The caller has checked that ``by`` may restore
    into the preview's target. Raises JobRefused for a preview that cannot be confirmed.
    """
    done = confirmed_restore(preview)
    if done is not None:
        return done, False
    if not preview.is_preview:
        raise JobRefused(f"{preview.name} is a restore, not a preview.")
    if not preview.is_done or preview.status in (Status.FAILED, Status.CANCELLED):
        raise JobRefused("Only a preview that finished can be confirmed.")
    if preview.backup is None or preview.target_cluster is None:
        raise JobRefused("The backup or the target cluster is gone; start a new restore.")
    if problem := stale_reason(preview):
        raise JobRefused(f"{problem} Run the preview again.")
    try:
        with transaction.atomic():
            restore = start_restore(
                preview.backup,
                preview.target_cluster,
                by=by,
                from_preview=preview,
                **(preview_options(preview) | (options or {})),
            )
    except IntegrityError:  # another request confirmed it a moment ago
        return Restore.objects.get(from_preview=preview), False
    return restore, True


def rerun_preview(preview: Restore, *, by) -> Restore:
    """A fresh preview with the same options (for a stale one)."""
    if preview.backup is None or preview.target_cluster is None:
        raise JobRefused("The backup or the target cluster is gone; start a new restore.")
    return start_restore(
        preview.backup, preview.target_cluster, by=by, preview=True, **preview_options(preview)
    )


def restore_name(backup_name: str, preview: bool = False) -> str:
    """``<backup>-<YYYYMMDDhhmmss>`` as Velero names restores (``-preview`` for dry runs)."""
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")[:17]
    suffix = f"-{stamp}" + ("-preview" if preview else "")
    return backup_name[: 253 - len(suffix)] + suffix


def start_restore(
    backup: Backup, target: Cluster, *, by=None, preview: bool = False, run=None, **options
) -> Restore:
    """Create the Restore row (pending) and queue it after commit.

    The caller has checked that ``by`` may restore into ``target`` (the restore
    permission on the TARGET cluster, not only on the backup's cluster).
    ``options`` are Restore fields: include_namespaces, exclude_namespaces,
    namespace_mapping, include_resources, exclude_resources, label_selector,
    cluster_resources, restore_pvs, storage_class_mapping, preserve_node_ports,
    existing_policy.
    """
    if backup.status not in (Status.COMPLETED, Status.PARTIALLY_FAILED):
        raise JobRefused(f"Backup {backup.name} did not complete, so it cannot be restored.")
    detail = {
        "backup": backup.name,
        "into": target.name,
        "mapping": options.get("namespace_mapping") or {},
    }
    return RestoreJob.create(
        by,
        "" if preview else "started restore",
        detail,
        name=restore_name(backup.name, preview),
        backup=backup,
        backup_name=backup.name,
        source_cluster_name=backup.cluster_name,
        workspace=target.workspace,
        target_cluster=target,
        target_cluster_name=target.name,
        is_preview=preview,
        run=run,
        **options,
    )
