"""Starting and deleting backups: the one path for pages, commands and schedules."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from locations.models import BackupLocation
from locations.providers import get_provider
from workspaces import audit
from workspaces.models import Cluster

from .models import ACTIVE_STATUSES, Backup, ClusterResources
from .naming import backup_name, check_name

log = logging.getLogger(__name__)


class BackupRefused(ValueError):
    """The backup cannot start; the message says why, for a person."""


def start_backup(
    cluster: Cluster,
    location: BackupLocation,
    *,
    by=None,
    name: str = "",
    prefix: str = "manual",
    ttl: timedelta | None = None,
    include_namespaces: list[str] | None = None,
    exclude_namespaces: list[str] | None = None,
    include_resources: list[str] | None = None,
    exclude_resources: list[str] | None = None,
    cluster_resources: str = ClusterResources.AUTO,
    label_selector: str = "",
    include_disks: bool = False,
    schedule=None,
) -> Backup:
    """Create the Backup row (pending) and queue its task once the row is committed.

    The task is queued with ``transaction.on_commit``: a worker never looks for a
    row that is not there yet, and a rolled-back request queues nothing.
    """
    from .tasks import run_backup

    name = name or backup_name(prefix, cluster.name)
    problem = check_name(name)
    if problem:
        raise BackupRefused(f"Backup name {name!r}: {problem}")
    if Backup.objects.filter(location=location, name=name).exists():
        raise BackupRefused(f"A backup named {name} already exists in {location}.")
    if location.status == BackupLocation.Status.UNAVAILABLE:
        raise BackupRefused(
            f"Location {location} is unavailable ({location.status_message}). Fix it and "
            "validate it again first."
        )
    try:
        with transaction.atomic():
            backup = Backup(
                name=name,
                workspace=cluster.workspace,
                cluster=cluster,
                cluster_name=cluster.name,
                location=location,
                schedule=schedule,
                created_by=audit.signed_in(by),
                include_namespaces=include_namespaces or [],
                exclude_namespaces=exclude_namespaces or [],
                include_resources=include_resources or [],
                exclude_resources=exclude_resources or [],
                cluster_resources=cluster_resources,
                label_selector=label_selector,
                include_disks=include_disks,
            )
            if ttl is not None:
                backup.ttl = ttl
            backup.save()
            audit.record(by, "started backup", backup, cluster=cluster.name, location=location.name)
            transaction.on_commit(lambda: run_backup.delay(backup.pk))
    except IntegrityError:  # the same name, started at the same moment
        raise BackupRefused(f"A backup named {name} already exists in {location}.") from None
    return backup


def delete_backup(backup: Backup, by=None) -> None:
    """Delete the backup's objects from storage first, then the row.

    If storage fails, the row stays (with the reason in ``error``) so nothing is
    forgotten while its data still sits in the bucket; deleting again retries.
    Raises StorageError in that case.
    """
    if backup.status in ACTIVE_STATUSES:
        raise BackupRefused("The backup is still running; wait for it to finish.")
    if backup.source == Backup.Source.IMPORTED:
        raise BackupRefused(
            "This backup was imported from the location and is read-only here: delete it "
            "with the tool that made it (the console then forgets it at the next sync)."
        )
    provider = get_provider(backup.location)
    try:
        removed = provider.delete_prefix(Layout(backup.location.prefix).backup_dir(backup.name))
    except StorageError as exc:
        Backup.objects.filter(pk=backup.pk).update(error=f"Deleting from storage failed: {exc}")
        raise
    finally:
        provider.close()
    audit.record(by, "deleted backup", backup, objects=removed, location=backup.location.name)
    backup.delete()
    log.info("deleted backup %s (%d objects)", backup.name, removed)


def expiry_of(backup: Backup):
    return (backup.started_at or timezone.now()) + backup.ttl


def restore_name(backup_name: str, preview: bool = False) -> str:
    """``<backup>-<YYYYMMDDhhmmss>`` as Velero names restores (``-preview`` for dry runs)."""
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")[:17]
    suffix = f"-{stamp}" + ("-preview" if preview else "")
    return backup_name[: 253 - len(suffix)] + suffix


def start_restore(
    backup: Backup,
    target: Cluster,
    *,
    by=None,
    preview: bool = False,
    run=None,
    **options,
):
    """Create the Restore row (pending) and queue it after commit.

    The caller has checked that ``by`` may restore into ``target`` (the restore
    permission on the TARGET cluster, not only on the backup's cluster).
    ``options`` are Restore fields: include_namespaces, exclude_namespaces,
    namespace_mapping, include_resources, exclude_resources, label_selector,
    cluster_resources, restore_pvs, preserve_node_ports, existing_policy.
    """
    from .models import Restore
    from .tasks import run_restore

    if backup.status not in ("completed", "partially_failed"):
        raise BackupRefused(f"Backup {backup.name} did not complete, so it cannot be restored.")
    with transaction.atomic():
        restore = Restore.objects.create(
            name=restore_name(backup.name, preview),
            backup=backup,
            backup_name=backup.name,
            source_cluster_name=backup.cluster_name,
            workspace=target.workspace,
            target_cluster=target,
            target_cluster_name=target.name,
            is_preview=preview,
            run=run,
            created_by=audit.signed_in(by),
            **options,
        )
        if not preview:
            audit.record(
                by, "started restore", restore, backup=backup.name, into=target.name,
                mapping=restore.namespace_mapping,
            )  # fmt: skip
        transaction.on_commit(lambda: run_restore.delay(restore.pk))
    return restore
