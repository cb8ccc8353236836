"""The console's restore reads Velero's own ``volumeinfo`` records (``velero_records.py``):
its CSI snapshots come back, its Kopia/restic uploads and plugin snapshots are said to be
unreadable, skipped and failed records bring nothing."""

from __future__ import annotations

from backups.engine.volumes.records import SKIPPED, SUCCEEDED, VolumeEntry
from backups.engine.volumes.velero_records import (
    ORIGIN,
    complete,
    entries_from_velero,
    entry_from_velero,
    missing_source,
    snapshot_name,
)

DRIVER = "hostpath.csi.palette.local"


def velero_csi(**changes) -> dict:
    """A record as Velero 1.18 writes it for a CSI snapshot kept in the storage system."""
    record = {
        "pvcName": "data", "pvcNamespace": "shop", "pvName": "pvc-1234",
        "backupMethod": "CSISnapshot", "snapshotDataMoved": False,
        "preserveLocalSnapshot": False, "skipped": False,
        "startTimestamp": "2026-12-01T23:00:00Z", "result": "succeeded",
        "csiSnapshotInfo": {
            "snapshotHandle": "snap-77", "size": 67108864, "driver": DRIVER,
            "vscName": "snapcontent-abc", "operationID": "shop/velero-data-x7k2p/2026-12-01T23:00:01Z",
            "ReadyToUse": True,
        },
        "pvInfo": {"reclaimPolicy": "Delete", "labels": None},
    }  # fmt: skip
    record.update(changes)
    return record


def test_a_velero_csi_snapshot_becomes_a_kept_snapshot_entry():
    entry = entry_from_velero(velero_csi())
    assert entry["origin"] == ORIGIN and entry["state"] == SUCCEEDED
    assert (entry["namespace"], entry["claim"], entry["pv_name"]) == ("shop", "data", "pvc-1234")
    assert entry["method"] == "snapshot" and entry["driver"] == DRIVER
    assert entry["snapshot"] == {
        "name": "velero-data-x7k2p", "content": "snapcontent-abc", "handle": "snap-77",
        "restore_size": 67108864, "kept": True, "ready": True, "origin": ORIGIN,
    }  # fmt: skip
    # the restore reads it as its own record
    restored = VolumeEntry.from_json(entry)
    assert restored.snapshot["handle"] == "snap-77" and restored.reclaim_policy == "Delete"


def test_velero_uploads_and_plugin_snapshots_are_said_to_be_unreadable():
    moved = velero_csi(
        snapshotDataMoved=True,
        snapshotDataMovementInfo={"dataMover": "velero", "uploaderType": "kopia"},
    )
    fs = velero_csi(backupMethod="PodVolumeBackup", csiSnapshotInfo=None,
                    pvbInfo={"uploaderType": "kopia", "volumeName": "data"})  # fmt: skip
    native = velero_csi(backupMethod="NativeSnapshot", csiSnapshotInfo=None)
    reasons = {}
    for name, record in (("moved", moved), ("fs", fs), ("native", native)):
        entry = entry_from_velero(record)
        assert entry["state"] == SKIPPED and entry["method"] == "" and "snapshot" not in entry
        reasons[name] = entry["reason"]
    assert "data mover velero" in reasons["moved"] and "Kopia" in reasons["moved"]
    assert "file-system backup (kopia" in reasons["fs"]
    assert "volume snapshotter plugin" in reasons["native"]
    assert all("restore its data with Velero" in r for r in reasons.values())


def test_a_csi_record_without_a_handle_is_not_restored_from():
    info = velero_csi()
    info["csiSnapshotInfo"]["snapshotHandle"] = "unknown"
    entry = entry_from_velero(info)
    assert entry["state"] == SKIPPED and "no snapshot handle" in entry["reason"]
    for driver in ("", "../../namespaces/kube-system/secrets/x", "a/b", "-x", "x" * 64):
        info = velero_csi()
        info["csiSnapshotInfo"]["driver"] = driver  # from the bucket, it goes into a path
        assert entry_from_velero(info)["state"] == SKIPPED, driver


def test_skipped_failed_and_claimless_records_bring_nothing():
    skipped = velero_csi(backupMethod="", skipped=True, skippedReason="any: no volume policy;")
    failed = velero_csi(result="failed")
    no_claim = velero_csi(pvcName="", pvcNamespace="")
    assert entries_from_velero([skipped, failed, no_claim, "junk", None]) == []
    assert entries_from_velero({"not": "a list"}) == []
    assert len(entries_from_velero([velero_csi(), skipped])) == 1


def test_snapshot_name_comes_from_the_operation_id():
    assert snapshot_name("ns/velero-data-abc/2026-12-01T23:00:01Z") == "velero-data-abc"
    assert snapshot_name("") == snapshot_name("just-one") == ""


CLASSES = [
    {"metadata": {"name": "other"}, "driver": "other.csi"},
    {"metadata": {"name": "mine", "labels": {"velero.io/csi-volumesnapshot-class": "true"}},
     "driver": DRIVER},
]  # fmt: skip


def test_complete_takes_the_claims_snapshot_name_and_a_class_of_the_driver():
    record = entry_from_velero(velero_csi())
    claim = {"metadata": {"annotations": {"velero.io/volume-snapshot-name": "velero-data-q"}}}
    complete(record, claim, CLASSES)
    assert record["snapshot"]["name"] == "velero-data-q"
    assert record["snapshot"]["class"] == "mine"
    # no annotation: the operation ID's name stays; no class of the driver: none
    record = entry_from_velero(velero_csi())
    complete(record, {"metadata": {}}, CLASSES[:1])
    assert record["snapshot"]["name"] == "velero-data-x7k2p"
    assert record["snapshot"]["class"] is None
    unreadable = entry_from_velero(velero_csi(snapshotDataMoved=True))
    complete(unreadable, claim, CLASSES)  # nothing to fill in
    assert "snapshot" not in unreadable


def test_missing_source_names_the_driver_for_velero_snapshots():
    assert DRIVER in missing_source({"origin": ORIGIN}, DRIVER)
    assert "no copy" in missing_source({"kept": True}, DRIVER)
