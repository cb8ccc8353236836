"""Where an imported backup came from, read from its ``velero-backup.json``.

Velero records no cluster name, so a backup Velero made shows its cluster as
"unknown"; what it does record says where it came from: the storage location it was
written to (label ``velero.io/storage-location``, or ``spec.storageLocation``), the
schedule that made it (``velero.io/schedule-name``), the source cluster's Kubernetes
version (``velero.io/source-cluster-k8s-gitversion``). A backup this console (or
another copy of it) wrote carries ``palette.io/cluster-name`` too. Sync keeps these
on the row (``Backup.imported_from``); the pages and the API show them.

Every value comes from the bucket, which anyone with write access to it controls: the
schema (``velero_schema.py``) has already bounded and checked them; templates escape.
"""

from __future__ import annotations

from backups.engine.velero.format import CLUSTER_LABEL, SHA256_ANNOTATION

VELERO, CONSOLE = "velero", "console"
STORAGE_LOCATION_LABEL = "velero.io/storage-location"
SCHEDULE_LABEL = "velero.io/schedule-name"
K8S_VERSION_ANNOTATION = "velero.io/source-cluster-k8s-gitversion"
WRITERS = {VELERO: "Velero", CONSOLE: "a backup console"}


def read(labels: dict, annotations: dict, spec_location: str, k8s_version: str) -> dict:
    """The provenance to keep: only keys with a value."""
    console = CLUSTER_LABEL in labels or SHA256_ANNOTATION in annotations
    found = {
        "writer": CONSOLE if console else VELERO,
        "storage_location": labels.get(STORAGE_LOCATION_LABEL) or spec_location or "",
        "schedule": labels.get(SCHEDULE_LABEL, ""),
        "cluster": labels.get(CLUSTER_LABEL, ""),
        "kubernetes_version": k8s_version,
    }
    return {key: value for key, value in found.items() if value}


def short(origin: dict) -> str:
    """For a list's cluster column: ``Velero, location default, schedule daily``."""
    if not origin:
        return ""
    parts = [WRITERS.get(origin.get("writer", ""), "unknown writer").capitalize()]
    if origin.get("storage_location"):
        parts.append(f"location {origin['storage_location']}")
    if origin.get("schedule"):
        parts.append(f"schedule {origin['schedule']}")
    return ", ".join(parts)


def describe(origin: dict) -> str:
    """For a backup's page: who wrote it, from where, and with what."""
    if not origin:
        return "Found in the location by a sync; its velero-backup.json says nothing more."
    writer = WRITERS.get(origin.get("writer", ""), "an unknown writer")
    text = f"Written by {writer}"
    if origin.get("cluster"):
        text += f" from cluster {origin['cluster']}"
    if origin.get("storage_location"):
        text += f" to its storage location {origin['storage_location']}"
    if origin.get("schedule"):
        text += f", by schedule {origin['schedule']}"
    if origin.get("kubernetes_version"):
        text += f"; the source cluster ran Kubernetes {origin['kubernetes_version']}"
    return text + "."


def volume_note(origin: dict) -> str:
    """For a backup Velero wrote: which of its volume data the console restores
    (``backups/engine/volumes/velero_records.py``); '' for another writer."""
    if (origin or {}).get("writer", VELERO) != VELERO:
        return ""
    return (
        "Of its volumes, the console restores Velero's CSI snapshots (Restore persistent "
        "volumes, in a cluster with the same CSI driver and the storage that holds them). It "
        "cannot read Velero's own uploads, the data mover's and the file-system backup's "
        "(Kopia or restic repositories): those claims come back as archived, without their "
        "data; restore them with Velero."
    )
