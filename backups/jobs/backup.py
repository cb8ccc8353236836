"""Backups as jobs: starting one, running it, and deleting a finished one."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError

from backups.engine.kube.api import KubeError
from backups.engine.kube.client import KubeconfigError
from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import sealed_with
from locations.models import BackupLocation
from locations.object_lock import refuse_early_delete, retention_for
from locations.providers import get_provider
from workspaces import audit
from workspaces.models import Cluster
from workspaces.roles import Action

from ..engine.backup.run import run_backup as engine_run_backup
from ..engine.volumes.copystore import forget_backup
from ..engine_inputs import backup_request, store
from ..models import ACTIVE_STATUSES, Backup, Status
from ..naming import backup_name, check_name, free_name
from .base import Job, JobRefused, Outcome
from .volumes import VolumeRecorder, delete_snapshots

log = logging.getLogger(__name__)

# The engine's phase names, as the row's final status.
PHASE_STATUS = {
    "Completed": Status.COMPLETED,
    "PartiallyFailed": Status.PARTIALLY_FAILED,
    "Failed": Status.FAILED,
    "Cancelled": Status.CANCELLED,
}


class BackupJob(Job):
    model = Backup
    kind = "backup"
    noun = "backup"
    task_name = "backups.tasks.run_backup"
    related = ("cluster", "location")
    start_action = Action.BACKUP
    template, context_name = "backups/detail.html", "backup"
    cluster_gone = "The cluster was removed from the console before the backup ran."

    def engine(self):
        """The one engine call; it stops at its next safe point once ``should_stop``."""
        recorder = VolumeRecorder("backup", self.row)
        return engine_run_backup(
            backup_request(self.row, self.provider),
            progress=self.progress,
            log=self.reporter.log,
            should_stop=self.should_stop,
            volume=recorder.volume,
            hook=recorder.hook,
        )

    def work(self) -> Outcome:
        retention = retention_for(self.row.location, self.row.started_at)
        if retention is not None:  # recorded first: whatever gets written is locked
            self.provider.set_retention(retention)
            Backup.objects.filter(pk=self.row.pk).update(locked_until=retention.until)
            self.row.locked_until = retention.until
        outcome = self.engine()
        return Outcome(PHASE_STATUS[outcome.phase], outcome.error, dict(
            items_done=outcome.items, items_total=max(outcome.items, self.row.items_total),
            errors_count=outcome.errors, warnings_count=outcome.warnings,
            size_bytes=outcome.size_bytes, sha256=outcome.sha256,
            kubernetes_version=outcome.kubernetes_version, expires_at=outcome.expires,
            phase=outcome.phase, key_id=sealed_with(self.provider),
        ))  # fmt: skip

    def clean_up(self) -> None:
        """No partial backup stays in the store: the archive upload was aborted by
        the engine's writer; the files written before it are removed here, and its
        restic snapshots forgotten."""
        forget_backup(store(self.row.location, self.provider), self.row.name, everywhere=True)
        self.provider.delete_prefix(Layout(self.row.location.prefix).backup_dir(self.row.name))

    def after(self, outcome: Outcome) -> None:
        if outcome.fields:  # the engine ran to its own end (not a crash or a cancel)
            audit.record(
                self.row.created_by, "backed up", self.row, result=outcome.fields["phase"],
                items=outcome.fields["items_done"],
            )  # fmt: skip
            from ..copies import copy_after_backup

            copy_after_backup(self.row)


def start_backup(
    cluster: Cluster,
    location: BackupLocation,
    *,
    by=None,
    name: str = "",
    prefix: str = "manual",
    ttl: timedelta | None = None,
    schedule=None,
    **options,
) -> Backup:
    """Create the Backup row (pending) and queue its task once the row is committed.

    ``options`` are BackupOptions fields: include_namespaces, exclude_namespaces,
    include_resources, exclude_resources, cluster_resources, label_selector,
    include_disks (the model's defaults for those not given)."""
    if not name:
        name = free_name(location.backups, backup_name(prefix, cluster.name))
    problem = check_name(name)
    if problem:
        raise JobRefused(f"Backup name {name!r}: {problem}")
    if Backup.objects.filter(location=location, name=name).exists():
        raise JobRefused(f"A backup named {name} already exists in {location}.")
    if location.status == BackupLocation.Status.UNAVAILABLE:
        raise JobRefused(
            f"Location {location} is unavailable ({location.status_message}). Fix it and "
            "validate it again first."
        )
    try:
        return BackupJob.create(
            by,
            "started backup",
            {"cluster": cluster.name, "location": location.name},
            name=name,
            workspace=cluster.workspace,
            cluster=cluster,
            cluster_name=cluster.name,
            location=location,
            schedule=schedule,
            **options,
            **({"ttl": ttl} if ttl is not None else {}),
        )
    except IntegrityError:  # the same name, started at the same moment
        raise JobRefused(f"A backup named {name} already exists in {location}.") from None


def delete_backup(backup: Backup, by=None) -> None:
    """Delete the backup's objects from storage first, then the row.

    If storage fails, the row stays (with the reason in ``error``) so nothing is
    forgotten while its data still sits in the bucket; deleting again retries.
    Raises StorageError in that case.
    """
    if backup.status in ACTIVE_STATUSES:
        raise JobRefused("The backup is still running; wait for it to finish.")
    if backup.source == Backup.Source.IMPORTED:
        raise JobRefused(
            "This backup was imported from the location and is read-only here: delete it "
            "with the tool that made it (the console then forgets it at the next sync)."
        )
    refuse_early_delete(backup)
    try:
        snapshots = delete_snapshots(backup)
    except (KubeError, KubeconfigError) as exc:
        message = f"Deleting its volume snapshots in cluster {backup.cluster_name} failed: {exc}"
        Backup.objects.filter(pk=backup.pk).update(error=message)
        raise JobRefused(message + " Try again once the cluster answers.") from None
    try:
        with get_provider(backup.location) as provider:
            # Its restic snapshots first: the volume records that name them go with the prefix.
            later = forget_backup(store(backup.location, provider), backup.name)
            if later:
                log.info("backup %s: restic prune of %s left for later (busy)", backup.name, later)
            removed = provider.delete_prefix(Layout(backup.location.prefix).backup_dir(backup.name))
    except StorageError as exc:
        Backup.objects.filter(pk=backup.pk).update(error=f"Deleting from storage failed: {exc}")
        raise
    if snapshots:
        log.info("deleted %d volume snapshots of backup %s", snapshots, backup.name)
    audit.record(by, "deleted backup", backup, objects=removed, location=backup.location.name)
    backup.delete()
    log.info("deleted backup %s (%d objects)", backup.name, removed)
