"""Backup sync: the console learns about backups found in a location.

Anything under ``<prefix>/backups/<name>/velero-backup.json`` that the console
does not know is imported as a read-only entry (written by this console
elsewhere, or by Velero) that can be browsed and restored. Entries whose
metadata vanished from storage are removed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.dateparse import parse_datetime

from locations.layout import Layout
from locations.models import BackupLocation
from locations.providers import get_provider
from locations.providers.base import StorageError
from workspaces.models import Cluster

from .engine.velero import CLUSTER_LABEL, SHA256_ANNOTATION
from .models import FINAL_STATUSES, Backup, Status
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


def _when(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


class Clusters:
    """The registered clusters, read once per sync: every name (a backup made elsewhere still
    shows its cluster's name) and, by name, the clusters of the location's workspace (only
    those become the backup's cluster)."""

    def __init__(self, workspace_id: int | None):
        self.names = sorted(set(Cluster.objects.values_list("name", flat=True)))
        self.local = {c.name: c for c in Cluster.objects.filter(workspace_id=workspace_id)}

    def of(self, document: dict, backup_name: str) -> tuple[str, Cluster | None]:
        """Our label when present, else the longest registered name that appears in the
        backup's name (``<prefix>-<cluster>-<timestamp>``), else "unknown"."""
        labels = (document.get("metadata") or {}).get("labels") or {}
        name = labels.get(CLUSTER_LABEL, "")
        if not name:
            matches = [c for c in self.names if f"-{c}-" in f"-{backup_name}-"]
            name = max(matches, key=len) if matches else ""
        return name or "unknown", self.local.get(name)


def backup_from_document(
    location: BackupLocation, document: dict, clusters: Clusters | None = None
) -> Backup:
    meta, spec, status = (document.get(k) or {} for k in ("metadata", "spec", "status"))
    name = meta["name"]
    clusters = clusters or Clusters(location.workspace_id)
    cluster_name, cluster = clusters.of(document, name)
    progress = status.get("progress") or {}
    included = [ns for ns in spec.get("includedNamespaces") or [] if ns != "*"]
    clusterwide = spec.get("includeClusterResources")
    return Backup(
        name=name,
        workspace=location.workspace,
        cluster=cluster,
        cluster_name=cluster_name,
        location=location,
        source=Backup.Source.IMPORTED,
        status=PHASES.get(status.get("phase"), Status.FAILED),
        phase=status.get("phase", ""),
        error="" if status.get("phase") in PHASES else f"Velero phase: {status.get('phase', '?')}",
        started_at=_when(status.get("startTimestamp")),
        finished_at=_when(status.get("completionTimestamp")),
        expires_at=_when(status.get("expiration")),
        items_total=progress.get("totalItems") or 0,
        items_done=progress.get("itemsBackedUp") or 0,
        errors_count=status.get("errors") or 0,
        warnings_count=status.get("warnings") or 0,
        include_namespaces=included,
        exclude_namespaces=spec.get("excludedNamespaces") or [],
        include_resources=spec.get("includedResources") or [],
        exclude_resources=spec.get("excludedResources") or [],
        cluster_resources="auto" if clusterwide is None else ("always" if clusterwide else "never"),
        kubernetes_version=(meta.get("annotations") or {}).get(
            "velero.io/source-cluster-k8s-gitversion", ""
        ),
        sha256=(meta.get("annotations") or {}).get(SHA256_ANNOTATION, ""),
        ttl=_ttl(spec.get("ttl")),
    )


def _ttl(text: str | None) -> timedelta:
    try:
        return parse_duration(text or "720h0m0s")
    except ValueError:
        return timedelta(hours=720)


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
                if not provider.exists(key):
                    raise ValueError("no velero-backup.json (an unfinished or foreign folder)")
                document = json.loads(provider.get_bytes(key))
                backup = backup_from_document(location, document, clusters)
                if backup.name != name:
                    raise ValueError(f"its metadata names it {backup.name!r}")
                backup.save()
                result.imported.append(name)
            except (ValueError, KeyError, TypeError) as exc:
                result.skipped[name] = f"unreadable velero-backup.json ({exc})"
        vanished = [
            name for name, status in known.items() if name not in found and status in FINAL_STATUSES
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
