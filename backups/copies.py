"""A second copy of a backup in another location (3-2-1), verified by checksum.

Every object of the backup is streamed from its location (opened if sealed there)
into the other one (sealed with that location's key and locked with its retention
if it does so), hashing as it goes; each copied object is then read back from
the destination and its SHA-256 compared with the source's. The copy is a
Backup row of its own in the destination, listed with its origin, so it restores
when the first location is gone. A copy that fails ends Failed, with the reason,
and removes what it wrote.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import sealed_with
from backups.engine.volumes.copystore import RESTIC, CopyStore, forget_backup
from backups.engine_inputs import store
from locations.models import BackupLocation
from locations.object_lock import retention_for
from locations.providers import RefusedProvider, get_provider
from workspaces import audit

from .jobs import JobRefused
from .jobs.base import heartbeat
from .models import Backup, Status

log = logging.getLogger(__name__)
PIECE = 1024 * 1024
# A volume record's namespace and claim come from the bucket and go into keys here.
OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")


class CopyFailed(Exception):
    """The copy did not complete; ``str()`` says why."""


def refuse_copy(backup: Backup, to: BackupLocation) -> None:
    if backup.status != Status.COMPLETED:
        raise JobRefused(
            f"Backup {backup.name} is {backup.get_status_display()}: copy a completed one."
        )
    if to.pk == backup.location_id:
        raise JobRefused("Choose another location than the one the backup is in.")
    if to.status == BackupLocation.Status.UNAVAILABLE:
        raise JobRefused(f"Location {to} is unavailable ({to.status_message}).")
    if Backup.objects.filter(location=to, name=backup.name).exists():
        raise JobRefused(f"Location {to} already holds a backup named {backup.name}.")


def start_copy(backup: Backup, to: BackupLocation, by=None) -> Backup:
    """The destination's row (running); ``run_copy`` fills it."""
    refuse_copy(backup, to)
    now = timezone.now()
    fields = {
        f.name: getattr(backup, f.name)
        for f in Backup._meta.concrete_fields
        if f.name in COPIED_FIELDS
    }
    try:
        with transaction.atomic():
            copy = Backup.objects.create(
                **fields,
                location=to,
                copied_from=backup,
                origin=f"{backup.name} in {backup.location.name}"[:400],
                status=Status.RUNNING,
                phase="Copying",
                started_at=now,
                heartbeat_at=now,
                created_by=audit.signed_in(by),
            )
            Backup.objects.filter(pk=copy.pk).update(created_at=backup.created_at)
    except IntegrityError:
        raise JobRefused(f"Location {to} already holds a backup named {backup.name}.") from None
    audit.record(by, "started copy of", backup, to=to.name)
    return copy


# What a copy shares with its original (the rest is its own: location, status, times).
COPIED_FIELDS = {
    "name", "workspace", "cluster", "cluster_name", "schedule", "run", "source",
    "kubernetes_version", "expires_at", "size_bytes", "sha256", "errors_count",
    "warnings_count", "items_total", "items_done", "include_namespaces", "exclude_namespaces",
    "include_resources", "exclude_resources", "cluster_resources", "label_selector",
    "include_disks", "ttl",
}  # fmt: skip


def run_copy(copy: Backup) -> Backup:
    """Copy and verify every object of ``copy.copied_from``; the row ends Completed or Failed."""
    origin = copy.copied_from
    source = target = None
    written: list[str] = []
    try:
        if origin is None:
            raise CopyFailed("The original backup was deleted before it could be copied.")
        source, target = get_provider(origin.location), get_provider(copy.location)
        for provider in (source, target):
            if isinstance(provider, RefusedProvider):
                raise provider.error
        retention = retention_for(copy.location)
        if retention is not None:
            target.set_retention(retention)
            Backup.objects.filter(pk=copy.pk).update(locked_until=retention.until)
        with heartbeat(copy):
            sums = _copy_objects(origin, copy, source, target, written)
            _verify(origin, copy, target, sums)
    except (CopyFailed, StorageError) as exc:
        _remove(target, copy, written)
        copy.finish(Status.FAILED, error=f"The copy failed: {exc}", phase="Failed")
        log.info("copy of %s to %s failed: %s", copy.name, copy.location, exc)
        return copy
    finally:
        for provider in (source, target):
            if provider is not None:
                provider.close()
    copy.append_log(f"Copied {len(sums)} objects from {copy.origin}; every SHA-256 matched.")
    copy.finish(Status.COMPLETED, phase="Completed", key_id=sealed_with(target))
    audit.record(copy.created_by, "copied backup", copy, origin=copy.origin, objects=len(sums))
    return copy


def _copy_objects(origin, copy, source, target, written: list[str]) -> dict[str, str]:
    """Stream each object across; returns {relative name: sha256 of its content}."""
    src_dir = Layout(origin.location.prefix).backup_dir(origin.name)
    dst_dir = Layout(copy.location.prefix).backup_dir(copy.name)
    sums = {}
    records = Layout("").backup_file(origin.name, "volumecopies").rsplit("/", 1)[-1]
    for info in list(source.list(src_dir)):
        relative = info.key[len(src_dir) :]
        if relative == records:
            sums[relative] = _copy_volumes(origin, copy, source, target, info.key, written)
            continue
        digest = hashlib.sha256()
        with source.open_read(info.key) as reader, target.open_write(dst_dir + relative) as writer:
            written.append(dst_dir + relative)
            while piece := reader.read(PIECE):
                digest.update(piece)
                writer.write(piece)
        sums[relative] = digest.hexdigest()
    if not sums:
        raise CopyFailed(f"No objects of backup {origin.name} were found in {origin.location}.")
    return sums


def _copy_volumes(origin, copy, source, target, key: str, written: list[str]) -> str:
    """The volume copies: a tar copy came across with the backup's files (its record
    now names its key here); a restic copy is read from the origin's repository and
    written into this location's own (or as a tar file when it keeps none), its bytes
    checked against the SHA-256 recorded at backup. Returns the new records' SHA-256."""
    entries = json.loads(gzip.decompress(source.get_bytes(key)))
    here = Layout(copy.location.prefix)
    mine, theirs = (
        CopyStore(store(copy.location, target)),
        CopyStore(store(origin.location, source)),
    )
    try:
        for entry in entries:
            record = entry.get("copy") or {}
            claim, namespace = entry.get("claim", ""), entry.get("namespace", "")
            if not all(isinstance(n, str) and OBJECT_NAME.match(n) for n in (claim, namespace)):
                raise CopyFailed(
                    f"{origin.name} names a volume that cannot be: {namespace!r}/{claim!r}"[:300]
                )
            if record.get("format") != RESTIC:
                if record.get("key"):
                    record["key"] = here.volume_copy(copy.name, namespace, claim)
                continue
            digest, size = hashlib.sha256(), 0
            with (
                contextlib.closing(theirs.open(record, claim)) as reader,
                mine.writer(copy.name, namespace, claim) as writer,
            ):
                if mine.format() != RESTIC:
                    written.append(here.volume_copy(copy.name, namespace, claim))
                while piece := reader.read(PIECE):
                    digest.update(piece)
                    size += len(piece)
                    writer.write(piece)
                if digest.hexdigest() != record.get("sha256"):
                    raise CopyFailed(
                        f"The volume copy of {namespace}/{claim} read from {origin.location} "
                        "differs from the one recorded at backup: the original is damaged."
                    )
            entry["copy"] = mine.record(
                writer, copy.name, namespace, claim, size, digest.hexdigest()
            )
    finally:
        mine.close()
        theirs.close()
    data = gzip.compress(json.dumps(entries).encode())
    target.put_bytes(here.backup_file(copy.name, "volumecopies"), data)
    written.append(here.backup_file(copy.name, "volumecopies"))
    return hashlib.sha256(data).hexdigest()


def _verify(origin, copy, target, sums: dict[str, str]) -> None:
    """Read every copied object back from the destination and compare its SHA-256."""
    dst_dir = Layout(copy.location.prefix).backup_dir(copy.name)
    for relative, expected in sums.items():
        digest = hashlib.sha256()
        with target.open_read(dst_dir + relative) as reader:
            while piece := reader.read(PIECE):
                digest.update(piece)
        if digest.hexdigest() != expected:
            raise CopyFailed(
                f"{relative} read back from {copy.location} differs from the original."
            )
    archive = Layout("").backup_file(origin.name, "archive").rsplit("/", 1)[-1]
    if origin.sha256 and sums.get(archive) not in (None, origin.sha256):
        raise CopyFailed(
            f"The archive's SHA-256 differs from the one recorded when {origin.name} was made: "
            "the original is damaged."
        )


def _remove(target, copy, written: list[str]) -> None:
    if target is None or not written:
        return
    try:
        forget_backup(store(copy.location, target), copy.name, everywhere=True)
        target.delete_prefix(Layout(copy.location.prefix).backup_dir(copy.name))
    except StorageError as exc:  # e.g. locked: the store keeps them until the lock ends
        copy.append_log(f"What the copy wrote could not be removed: {exc}")


def queue_copy(backup: Backup, to: BackupLocation, by=None) -> Backup:
    """Start a copy; a worker runs it once the row is committed."""
    from . import tasks

    copy = start_copy(backup, to, by=by)
    transaction.on_commit(lambda: tasks.run_copy.delay(copy.pk))
    return copy


def copy_after_backup(backup: Backup) -> Backup | None:
    """The schedule's second copy of a backup that just completed (``copy_to``)."""
    schedule = backup.schedule
    if schedule is None or schedule.copy_to is None or backup.status != Status.COMPLETED:
        return None
    try:
        return queue_copy(backup, schedule.copy_to)
    except JobRefused as exc:
        backup.append_log(f"Not copied to {schedule.copy_to}: {exc}")
        return None


def copy_backup(backup: Backup, to: BackupLocation, by=None) -> Backup:
    """Copy here and wait for the result (the command's --wait)."""
    return run_copy(start_copy(backup, to, by=by))
