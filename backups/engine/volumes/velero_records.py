"""Velero's own volume records, read by the console's restore: pure.

A backup Velero made has no ``<b>-palette-volumes.json.gz``; what it did with each volume
is in ``<b>-volumeinfo.json.gz`` (``VELERO-FORMAT.md``, "Volumes"). The console restores
one of Velero's methods and says why not for the others:

- ``CSISnapshot`` without ``snapshotDataMoved``: a CSI snapshot left in the storage
  system. Velero 1.18 deletes the VolumeSnapshot and its content from the cluster once
  the backup is done (the content's deletion policy set to Retain first), so nothing in
  the cluster holds it; the record's ``snapshotHandle`` and ``driver`` are enough to
  restore it as Velero does, over a statically provisioned content with that handle. The
  entry is the console's own shape (``VolumeEntry``), with ``snapshot["origin"]`` set to
  ``velero``: a restore uses it where the target has the record's CSI driver.
- ``CSISnapshot`` with ``snapshotDataMoved`` (Velero's data mover) and
  ``PodVolumeBackup`` (Velero's file-system backup): the data is in a Kopia (or restic)
  repository under the location's prefix, which the console does not read; ``NativeSnapshot``: a snapshot made by a volume snapshotter plugin, which the
  console does not run. Those claims are skipped, with that reason.
- a skipped or failed record: the claim is restored as archived, without data.
"""

from __future__ import annotations

import re

from backups.engine.volumes.objects import VELERO_SNAPSHOT_NAME, choose_snapshot_class
from backups.engine.volumes.records import SKIPPED, SUCCEEDED

ORIGIN = "velero"
UNKNOWN = "unknown"  # Velero's value for what it could not know
# A CSI driver's name (CSIDriver's own rule): it goes into an API path, and the bucket,
# which anyone with write access to it controls, supplies it.
DRIVER_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9.]{0,61}[A-Za-z0-9])?")


def _not_read(method: str, info: dict) -> str:
    """Why the console cannot restore the data of a record of ``method``."""
    if method == "CSISnapshot":
        mover = (info.get("snapshotDataMovementInfo") or {}).get("dataMover") or "velero"
        return (
            f"Velero moved its snapshot's data into the location (data mover {mover}, a Kopia "
            "repository), which the console cannot read: restore its data with Velero"
        )
    if method == "PodVolumeBackup":
        uploader = (info.get("pvbInfo") or {}).get("uploaderType") or "kopia"
        return (
            f"Velero's file-system backup ({uploader} repository in the location), which the "
            "console cannot read: restore its data with Velero"
        )
    return (
        f"Velero's {method or 'unknown'} record comes from a volume snapshotter plugin, which "
        "the console does not run: restore its data with Velero"
    )


def snapshot_name(operation_id: str) -> str:
    """The VolumeSnapshot's name in Velero's CSI operation ID ``<ns>/<name>/<time>``."""
    parts = (operation_id or "").split("/")
    return parts[1] if len(parts) == 3 else ""


def entry_from_velero(info: dict) -> dict | None:
    """The console's volume record (``VolumeEntry`` as JSON) for one of Velero's
    ``volumeinfo`` records, or None when Velero kept no data of it (skipped, failed, or no
    claim: nothing to restore, the claim comes back as archived)."""
    namespace, claim = info.get("pvcNamespace") or "", info.get("pvcName") or ""
    method = info.get("backupMethod") or ""
    if not (namespace and claim) or info.get("skipped") or not method:
        return None
    if info.get("result") and info["result"] != "succeeded":
        return None
    entry = {
        "origin": ORIGIN,
        "namespace": namespace,
        "claim": claim,
        "pv_name": info.get("pvName") or "",
        "reclaim_policy": (info.get("pvInfo") or {}).get("reclaimPolicy") or "",
    }
    csi = info.get("csiSnapshotInfo") or {}
    entry["driver"] = csi.get("driver") or ""
    handle = csi.get("snapshotHandle") or ""
    if method != "CSISnapshot" or info.get("snapshotDataMoved"):
        return entry | {"method": "", "state": SKIPPED, "reason": _not_read(method, info)}
    if not handle or handle == UNKNOWN or not DRIVER_NAME.fullmatch(entry["driver"]):
        return entry | {"method": "", "state": SKIPPED,
                        "reason": "Velero's record of its CSI snapshot has no snapshot handle "
                                  "or no valid driver name"}  # fmt: skip
    snapshot = {
        "name": snapshot_name(csi.get("operationID") or ""),
        "content": csi.get("vscName") or "",
        "handle": handle,
        "restore_size": int(csi.get("size") or 0),
        "kept": True,
        "ready": True,
        "origin": ORIGIN,
    }
    return entry | {"method": "snapshot", "state": SUCCEEDED, "snapshot": snapshot}


def entries_from_velero(volume_info: list) -> list[dict]:
    """One console record per claim of Velero's ``volumeinfo`` that has one."""
    found = []
    for info in volume_info if isinstance(volume_info, list) else ():
        entry = entry_from_velero(info) if isinstance(info, dict) else None
        if entry is not None:
            found.append(entry)
    return found


def complete(record: dict, claim: dict, classes: list[dict]) -> None:
    """Fill in what Velero's record lacks, in place: the VolumeSnapshot's name from the
    archived claim (``velero.io/volume-snapshot-name``, which Velero's restore reads too)
    when the operation ID did not give it, and a VolumeSnapshotClass of the record's driver
    in the target (Velero's restore takes any class of the driver), for the content made
    there."""
    snapshot = record.get("snapshot")
    if not snapshot:
        return
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    snapshot["name"] = annotations.get(VELERO_SNAPSHOT_NAME) or snapshot.get("name") or ""
    if not snapshot.get("class"):
        name, _why = choose_snapshot_class(classes, record.get("driver") or "")
        snapshot["class"] = name or None


def missing_source(snapshot: dict, driver: str) -> str:
    """Why a recorded volume has no source to come back from in the target."""
    if snapshot.get("origin") == ORIGIN:
        return (
            f"Velero's CSI snapshot needs the CSI driver {driver or '(none recorded)'}, which "
            "the target cluster does not have"
        )
    return "its snapshot is not in this cluster and the backup has no copy"
