"""Backup sync: the console learns about backups found in a location.

Anything under ``<prefix>/backups/<name>/velero-backup.json`` that the console
does not know is imported as a read-only entry (written by this console
elsewhere, or by Velero) that can be browsed and restored. Entries whose
metadata vanished from storage are removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import encrypted_message, is_sealed
from backups.engine.velero.format import CLUSTER_LABEL, SHA256_ANNOTATION
from locations.models import BackupLocation
from locations.providers import get_provider
from workspaces.models import Cluster

from . import provenance, velero_schema
from .models import FINAL_STATUSES, Backup, Status
from .models.backup import UNKNOWN_CLUSTER
from .naming import parse_duration

log = logging.getLogger(__name__)

PHASES = {
    "Completed": Status.COMPLETED,
    "PartiallyFailed": Status.PARTIALLY_FAILED,
}


class SyncRefused(ValueError):
    pass


@dataclass
class SyncResult:
    imported: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


class Clusters:
    """The registered clusters, read once per sync: every name (a backup made elsewhere still
    shows its cluster's name) and, by name, the clusters of the location's workspace (only
    those become the backup's cluster)."""

    def __init__(self, workspace_id: int | None):
        self.names = sorted(set(Cluster.objects.values_list("name", flat=True)))
        self.local = {c.name: c for c in Cluster.objects.filter(workspace_id=workspace_id)}

    def of(self, labels: dict, backup_name: str) -> tuple[str, Cluster | None]:
        """Our label when present, else the longest registered name that appears in the
        backup's name (``<prefix>-<cluster>-<timestamp>``), else "unknown" (the pages
        then show where it came from: ``provenance.py``)."""
        name = labels.get(CLUSTER_LABEL, "")
        if not name:
            matches = [c for c in self.names if f"-{c}-" in f"-{backup_name}-"]
            name = max(matches, key=len) if matches else ""
        return name or UNKNOWN_CLUSTER, self.local.get(name)


def backup_from_document(
    location: BackupLocation, document: dict | bytes, clusters: Clusters | None = None
) -> Backup:
    """An imported Backup (not saved) from a velero-backup.json; ValueError when the
    document does not fit the schema (velero_schema.py), naming the field."""
    if isinstance(document, bytes) and is_sealed(document):
        raise ValueError(encrypted_message("It"))
    doc = velero_schema.decode(document)
    meta, spec, status = doc.metadata, doc.spec, doc.status
    clusters = clusters or Clusters(location.workspace_id)
    cluster_name, cluster = clusters.of(meta.labels or {}, meta.name)
    progress = status.progress or velero_schema.Progress()
    phase = status.phase or ""
    clusterwide = spec.include_cluster_resources
    kubernetes_version = velero_schema.annotation(
        doc, provenance.K8S_VERSION_ANNOTATION, r"[-+.\w]{1,50}", "a Kubernetes version"
    )
    return Backup(
        name=meta.name,
        workspace=location.workspace,
        cluster=cluster,
        cluster_name=cluster_name,
        location=location,
        source=Backup.Source.IMPORTED,
        status=PHASES.get(phase, Status.FAILED),
        phase=phase,
        error="" if phase in PHASES else f"Velero phase: {phase or '?'}",
        started_at=status.start_timestamp,
        finished_at=status.completion_timestamp,
        expires_at=status.expiration,
        items_total=progress.total_items or 0,
        items_done=progress.items_backed_up or 0,
        errors_count=status.errors or 0,
        warnings_count=status.warnings or 0,
        include_namespaces=[ns for ns in spec.included_namespaces or [] if ns != "*"],
        exclude_namespaces=spec.excluded_namespaces or [],
        include_resources=spec.included_resources or [],
        exclude_resources=spec.excluded_resources or [],
        cluster_resources="auto" if clusterwide is None else ("always" if clusterwide else "never"),
        kubernetes_version=kubernetes_version,
        imported_from=provenance.read(
            meta.labels or {},
            meta.annotations or {},
            spec.storage_location or "",
            kubernetes_version,
        ),
        sha256=velero_schema.annotation(doc, SHA256_ANNOTATION, r"[0-9a-f]{64}", "a SHA-256"),
        ttl=_ttl(spec.ttl),
    )


def _ttl(text: str | None) -> timedelta:
    try:
        return parse_duration(text or "720h0m0s")
    except ValueError:
        return timedelta(hours=720)


def _import(provider, location: BackupLocation, name: str, key: str, clusters: Clusters) -> None:
    if not provider.exists(key):
        raise ValueError("no velero-backup.json (an unfinished or foreign folder)")
    with provider.open_read(key) as stream:
        raw = stream.read(velero_schema.MAX_DOCUMENT_BYTES + 1)
    backup = backup_from_document(location, raw, clusters)
    if backup.name != name:
        raise ValueError(f"its metadata names it {backup.name!r}")
    with transaction.atomic():  # a failed insert leaves the rest of the sync usable
        backup.save()


def sync_location(location: BackupLocation) -> SyncResult:
    if location.workspace_id is None:
        raise SyncRefused(
            f"Location {location} belongs to no workspace, so imported backups would be "
            "visible to no one. Give it a workspace first."
        )
    layout = Layout(location.prefix)
    provider = get_provider(location)
    result = SyncResult()
    try:
        # One listing of folder names, then metadata only for backups not known yet.
        found = {
            name: layout.backup_file(name, "metadata")
            for name in provider.list_folders(layout.backups_dir)
        }
        known = dict(Backup.objects.filter(location=location).values_list("name", "status"))
        clusters = Clusters(location.workspace_id)
        for name, key in sorted(found.items()):
            if name in known:
                continue
            try:
                _import(provider, location, name, key, clusters)
            except StorageError as exc:
                result.skipped[name] = f"velero-backup.json could not be read ({exc})"
            except ValueError as exc:  # msgspec's ValidationError and DecodeError too
                result.skipped[name] = f"unreadable velero-backup.json ({exc})"
            except DatabaseError as exc:  # e.g. imported at the same moment by another sync
                result.skipped[name] = f"not imported ({type(exc).__name__})"
            else:
                result.imported.append(name)
        # A backup still under object lock is kept: its versions are in the bucket even
        # when a delete marker hides them from the listing.
        locked = set(
            Backup.objects.filter(location=location, locked_until__gt=timezone.now()).values_list(
                "name", flat=True
            )
        )
        vanished = [
            name
            for name, status in known.items()
            if name not in found and status in FINAL_STATUSES and name not in locked
        ]
        Backup.objects.filter(location=location, name__in=vanished).delete()
        result.removed = vanished
    finally:
        provider.close()
    log.info(
        "sync %s: %d imported, %d removed, %d unreadable",
        location, len(result.imported), len(result.removed), len(result.skipped),
    )  # fmt: skip
    return result


def sync_all() -> int:
    """Sync every available location that has a workspace; returns how many backups
    were imported. A location that fails is logged and retried next time."""
    imported = 0
    for location in BackupLocation.objects.filter(
        workspace__isnull=False, status=BackupLocation.Status.AVAILABLE
    ):
        try:
            imported += len(sync_location(location).imported)
        except StorageError as exc:
            log.warning("sync of %s failed: %s", location, exc)
    return imported
