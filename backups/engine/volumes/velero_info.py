"""``<b>-volumeinfo.json.gz``: one record per persistent volume, as Velero 1.18 writes it.

The shape is Velero's ``BackupVolumeInfo`` (``internal/volume/volumes_information.go``),
field for field, with Go's ``omitempty`` kept: an empty ``backupMethod``,
``skippedReason``, ``result`` or timestamp is left out, as are the sub-records that do
not apply. Velero's restore keys these records by PV name and decides from
``backupMethod`` what to do with each PV in the archive; a PV with no record falls back
to Velero's pre-1.13 guessing (and its "Got 0 DataUpload result. Expect one." warning),
so every PV in the archive gets one, and so does every claim's volume the console
worked on.

How each of the console's methods is written, so that Velero reads it for what it is:

- no volume data (the backup without "Include all disks", a claim excluded or skipped by
  the policy): ``skipped`` with the reason in Velero's ``approach: reason;`` form. Velero
  then restores the PV object when its reclaim policy is Retain, and provisions a new
  empty volume when it is Delete, as for its own skipped volumes.
- a kept CSI snapshot: ``CSISnapshot``, ``preserveLocalSnapshot``, with the snapshot's
  content, handle, driver and operation: Velero restores it as its own CSI snapshot.
- a copy into the location read from a snapshot (temporary, or kept beside it):
  ``CSISnapshot`` with ``snapshotDataMoved`` and a ``snapshotDataMovementInfo`` whose
  data mover is ``palette`` and uploader ``tar``. Velero runs no data mover but its
  own (``velero``), and its restore takes the data-mover path only for backups whose
  ``spec.snapshotMoveData`` is true, which the console never writes: the claim comes
  back from the kept snapshot if there is one, else as a new empty volume. ``velero
  backup describe --details`` shows the copy under "Data Movement" with that mover.
- a copy of a live volume (no snapshot class): ``PodVolumeBackup`` with a ``pvbInfo``
  whose uploader is ``tar``. Velero restores pod volume data only from PodVolumeBackups
  listed in ``<b>-podvolumebackups.json.gz`` (empty: the console writes none), so it
  provisions a new empty volume for the claim and restores no data into it.

So Velero reads back the console's CSI snapshots, never the console's tar copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backups.engine.volumes.records import SKIPPED, SUCCEEDED, VolumeEntry, rfc3339

DATA_MOVER = "palette"
UPLOADER = "tar"
# Velero's value for what its data-mover records cannot know (FieldValueIsUnknown).
UNKNOWN = "unknown"
NO_DISKS = "volume data was not requested (the backup was made without Include all disks)"


@dataclass
class ArchivedVolume:
    """A PersistentVolume as the archive holds it: what its record needs."""

    name: str
    claim_namespace: str = ""
    claim: str = ""
    reclaim_policy: str = ""
    labels: dict = field(default_factory=dict)


def archived_volume(obj: dict) -> ArchivedVolume:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    ref = spec.get("claimRef") or {}
    return ArchivedVolume(
        name=meta.get("name", ""),
        claim_namespace=ref.get("namespace", "") or "",
        claim=ref.get("name", "") or "",
        reclaim_policy=spec.get("persistentVolumeReclaimPolicy", "") or "",
        labels=dict(meta.get("labels") or {}),
    )


def _compact(record: dict) -> dict:
    """Go's ``omitempty`` for the keys that carry it: drop empty strings and None."""
    return {k: v for k, v in record.items() if v not in ("", None)}


def skipped_reason(reason: str, approach: str = "any") -> str:
    """Velero's form: ``<approach>: <reason>;`` per approach that skipped the volume."""
    return f"{approach}: {reason};"


def _base(
    pv: str, namespace: str, claim: str, reclaim: str, labels: dict, *, skipped: bool
) -> dict:
    return {
        "pvcName": claim,
        "pvcNamespace": namespace,
        "pvName": pv,
        "snapshotDataMoved": False,
        "preserveLocalSnapshot": False,
        "skipped": skipped,
        "pvInfo": {"reclaimPolicy": reclaim, "labels": labels or None},
    }


def skipped_info(volume: ArchivedVolume, reason: str) -> dict:
    record = _base(volume.name, volume.claim_namespace, volume.claim, volume.reclaim_policy,
                   volume.labels, skipped=True)  # fmt: skip
    record["skippedReason"] = skipped_reason(reason)
    return _compact(record)


def _phase(entry: VolumeEntry, done: str) -> str:
    return done if entry.state == SUCCEEDED else "Failed"


def volume_info(entry: VolumeEntry) -> dict:
    """The record of one claim the console worked on (``VolumeEntry``)."""
    skipped = entry.state == SKIPPED
    record = _base(entry.pv_name, entry.namespace, entry.claim, entry.reclaim_policy,
                   entry.pv_labels, skipped=skipped)  # fmt: skip
    if skipped:
        record["skippedReason"] = skipped_reason(entry.reason or "skipped")
        return _compact(record)
    record.update(
        startTimestamp=rfc3339(entry.started),
        completionTimestamp=rfc3339(entry.finished),
        result="succeeded" if entry.state == SUCCEEDED else "failed",
    )
    snapshot, copied = entry.snapshot, bool(entry.copy) or "copy" in entry.method
    if snapshot:
        record["backupMethod"] = "CSISnapshot"
        record["preserveLocalSnapshot"] = bool(snapshot.get("kept"))
        record["csiSnapshotInfo"] = _csi_info(entry)
        if copied:
            record["snapshotDataMoved"] = True
            record["snapshotDataMovementInfo"] = _movement_info(entry)
    elif copied:
        record["backupMethod"] = "PodVolumeBackup"
        record["pvbInfo"] = _pod_volume_info(entry)
    return _compact(record)


def _csi_info(entry: VolumeEntry) -> dict:
    """``CSISnapshotInfo``; a temporary snapshot (deleted once copied) is "unknown", as
    Velero writes it for its own data movement."""
    snapshot = entry.snapshot
    if not snapshot.get("kept"):
        return {"snapshotHandle": UNKNOWN, "size": 0, "driver": entry.driver,
                "vscName": UNKNOWN, "operationID": UNKNOWN, "ReadyToUse": None}  # fmt: skip
    info = {
        "snapshotHandle": snapshot.get("handle", ""),
        "size": int(snapshot.get("restore_size") or 0),
        "driver": entry.driver,
        "vscName": snapshot.get("content", ""),
        "ReadyToUse": bool(snapshot.get("ready")),
    }
    if snapshot.get("operation_id"):
        info["operationID"] = snapshot["operation_id"]
    return info


def _movement_info(entry: VolumeEntry) -> dict:
    """``SnapshotDataMovementInfo`` for the console's copy read from a snapshot."""
    snapshot, size = entry.snapshot, int(entry.copy.get("size") or 0)
    info = {
        "dataMover": DATA_MOVER,
        "uploaderType": UPLOADER,
        "snapshotHandle": entry.copy.get("key", ""),
        "operationID": snapshot.get("operation_id", "") or UNKNOWN,
        "size": size,
        "Phase": _phase(entry, "Completed"),
    }
    if snapshot.get("kept") and snapshot.get("name"):
        info["retainedSnapshot"] = snapshot["name"]
    if size:
        info["incrementalSize"] = size  # every copy is whole
    return info


def _pod_volume_info(entry: VolumeEntry) -> dict:
    """``PodVolumeInfo`` for the console's copy of a live volume."""
    info = {
        "uploaderType": UPLOADER,
        "volumeName": entry.claim,
        "podName": "",
        "podNamespace": entry.namespace,
        "Phase": _phase(entry, "Completed"),
    }
    size = int(entry.copy.get("size") or 0)
    optional = {"snapshotHandle": entry.copy.get("key", ""), "size": size,
                "incrementalSize": size, "nodeName": entry.node}  # fmt: skip
    info.update({k: v for k, v in optional.items() if v})
    return info


def volume_infos(entries: list[VolumeEntry] | None, archived: list[ArchivedVolume]) -> list:
    """One record per PV: the console's record for each claim it worked on (bound ones:
    Velero has no record without a PV), a skipped one for every other PV the archive
    holds. ``entries`` is None for a backup made without volume data."""
    records, seen = [], set()
    for entry in entries or ():
        if entry.pv_name and entry.pv_name not in seen:
            seen.add(entry.pv_name)
            records.append(volume_info(entry))
    for volume in sorted(archived, key=lambda v: v.name):
        if volume.name in seen or not volume.name:
            continue
        seen.add(volume.name)
        reason = NO_DISKS if entries is None else "no claim in the backup's scope uses it"
        records.append(skipped_info(volume, reason))
    return records
