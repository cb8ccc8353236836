"""Restores as jobs: starting one (or its dry-run preview) and running it."""

from __future__ import annotations

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
        return {**super().page_context(user, row), "can_confirm": cls.may_confirm(user, row)}

    @staticmethod
    def may_confirm(user, restore: Restore) -> bool:
        """A finished preview may be confirmed by whoever may restore into its target."""
        return (
            restore.is_preview
            and restore.is_done
            and restore.status not in (Status.FAILED, Status.CANCELLED)
            and restore.target_cluster is not None
            and can(user, Action.RESTORE, restore.target_cluster)
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
