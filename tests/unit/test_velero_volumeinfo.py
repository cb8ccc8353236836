"""``<b>-volumeinfo.json.gz`` and the spec defaults, held to Velero 1.18's own structs.

The key sets below are Velero's ``BackupVolumeInfo`` and its sub-structs
(``internal/volume/volumes_information.go``): every key a record has must be one of
them, and the keys Go writes without ``omitempty`` must be there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from backups.engine.backup.collect import Collector, Unit
from backups.engine.inputs import BackupSpec
from backups.engine.kube.discovery import ResourceType
from backups.engine.kube.pages import decode_page
from backups.engine.velero.format import backup_document, go_duration
from backups.engine.volumes.records import FAILED, SKIPPED, SUCCEEDED, VolumeEntry
from backups.engine.volumes.velero_info import (
    NO_DISKS,
    ArchivedVolume,
    archived_volume,
    volume_info,
    volume_infos,
)

RECORD = {
    "pvcName", "pvcNamespace", "pvName", "backupMethod", "snapshotDataMoved",
    "preserveLocalSnapshot", "skipped", "skippedReason", "startTimestamp",
    "completionTimestamp", "result", "csiSnapshotInfo", "snapshotDataMovementInfo",
    "nativeSnapshotInfo", "pvbInfo", "pvInfo",
}  # fmt: skip
RECORD_ALWAYS = {"snapshotDataMoved", "preserveLocalSnapshot", "skipped"}
CSI = {"snapshotHandle", "size", "driver", "vscName", "operationID", "ReadyToUse",
       "volumeGroupSnapshotHandle"}  # fmt: skip
CSI_ALWAYS = {"snapshotHandle", "size", "driver", "vscName", "ReadyToUse"}
MOVEMENT = {"dataMover", "uploaderType", "retainedSnapshot", "snapshotHandle", "operationID",
            "size", "incrementalSize", "Phase"}  # fmt: skip
MOVEMENT_ALWAYS = {"dataMover", "uploaderType", "snapshotHandle", "operationID", "size", "Phase"}
POD_VOLUME = {"snapshotHandle", "size", "incrementalSize", "uploaderType", "volumeName",
              "podName", "podNamespace", "nodeName", "Phase"}  # fmt: skip
POD_VOLUME_ALWAYS = {"uploaderType", "volumeName", "podName", "podNamespace", "Phase"}
METHODS = {"CSISnapshot", "PodVolumeBackup", "NativeSnapshot"}
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def assert_velero_shape(record: dict) -> None:
    assert RECORD_ALWAYS <= set(record) <= RECORD, set(record) ^ RECORD
    assert set(record["pvInfo"]) == {"reclaimPolicy", "labels"}
    if record.get("backupMethod"):
        assert record["backupMethod"] in METHODS and record["result"] in ("succeeded", "failed")
    else:
        assert record["skipped"] is True and record["skippedReason"].endswith(";")
        assert "result" not in record and "startTimestamp" not in record
    # Velero's describer dereferences these without a nil check
    if record.get("preserveLocalSnapshot") or record.get("backupMethod") == "CSISnapshot":
        assert CSI_ALWAYS <= set(record["csiSnapshotInfo"]) <= CSI
    if record["snapshotDataMoved"]:
        assert MOVEMENT_ALWAYS <= set(record["snapshotDataMovementInfo"]) <= MOVEMENT
    if record.get("backupMethod") == "PodVolumeBackup":
        assert POD_VOLUME_ALWAYS <= set(record["pvbInfo"]) <= POD_VOLUME
    json.dumps(record)  # plain JSON


def entry(**kw) -> VolumeEntry:
    base = dict(namespace="shop", claim="data", pv_name="pv-1", driver="hostpath.csi",
                state=SUCCEEDED, reclaim_policy="Delete", pv_labels={"a": "b"},
                started=START, finished=START + timedelta(seconds=9))  # fmt: skip
    return VolumeEntry(**{**base, **kw})


KEPT = {"name": "vs", "content": "vsc", "handle": "h", "ready": True, "kept": True,
        "restore_size": 10, "operation_id": "shop/vs/2026-03-01T12:00:00Z"}  # fmt: skip
TEMPORARY = {"name": "tmp", "content": "tmpc", "handle": "th", "ready": True, "kept": False}
COPY = {"key": "velero/backups/b/volumes/shop/data.tar", "size": 4096, "sha256": "s"}


def test_a_kept_snapshot_is_velero_s_own_csi_snapshot():
    record = volume_info(entry(method="snapshot", snapshot=KEPT))
    assert_velero_shape(record)
    assert record["backupMethod"] == "CSISnapshot" and record["preserveLocalSnapshot"] is True
    assert record["snapshotDataMoved"] is False and "snapshotDataMovementInfo" not in record
    assert record["csiSnapshotInfo"]["vscName"] == "vsc"
    assert record["csiSnapshotInfo"]["ReadyToUse"] is True
    assert record["startTimestamp"] == "2026-03-01T12:00:00Z"
    assert record["completionTimestamp"] == "2026-03-01T12:00:09Z"
    assert record["pvInfo"] == {"reclaimPolicy": "Delete", "labels": {"a": "b"}}


def test_a_kept_snapshot_with_a_copy_shows_both_and_names_the_console_as_mover():
    record = volume_info(entry(method="snapshot_and_copy", snapshot=KEPT, copy=COPY))
    assert_velero_shape(record)
    assert record["preserveLocalSnapshot"] is True and record["snapshotDataMoved"] is True
    moved = record["snapshotDataMovementInfo"]
    assert moved["dataMover"] == "palette" and moved["uploaderType"] == "tar"
    assert moved["retainedSnapshot"] == "vs" and moved["snapshotHandle"] == COPY["key"]
    assert moved["size"] == 4096 and moved["Phase"] == "Completed"


def test_a_copy_from_a_temporary_snapshot_is_data_moved_by_another_mover():
    record = volume_info(entry(method="copy", snapshot=TEMPORARY, copy=COPY, from_snapshot=True))
    assert_velero_shape(record)
    assert record["backupMethod"] == "CSISnapshot"
    assert record["preserveLocalSnapshot"] is False and record["snapshotDataMoved"] is True
    # the snapshot is gone: Velero writes "unknown" for its own data movement too
    assert record["csiSnapshotInfo"]["snapshotHandle"] == "unknown"
    assert "retainedSnapshot" not in record["snapshotDataMovementInfo"]


def test_a_copy_of_a_live_volume_is_a_pod_volume_backup_velero_has_no_data_for():
    record = volume_info(entry(method="copy", driver="", copy=COPY, node="node-1"))
    assert_velero_shape(record)
    assert record["backupMethod"] == "PodVolumeBackup" and "csiSnapshotInfo" not in record
    assert record["pvbInfo"]["uploaderType"] == "tar"
    assert record["pvbInfo"]["nodeName"] == "node-1"


def test_a_failed_volume_keeps_its_method_and_says_failed():
    record = volume_info(entry(method="copy", snapshot={"class": "c", "kept": False},
                               state=FAILED, reason="the copy failed"))  # fmt: skip
    assert_velero_shape(record)
    assert record["result"] == "failed"
    assert record["snapshotDataMovementInfo"]["Phase"] == "Failed"


def test_a_skipped_volume_has_velero_s_reason_form_and_no_result():
    record = volume_info(entry(state=SKIPPED, reason="excluded by the policy"))
    assert_velero_shape(record)
    assert record["skippedReason"] == "any: excluded by the policy;"


def test_every_pv_in_the_archive_gets_one_record():
    archived = [
        archived_volume({"metadata": {"name": "pv-2", "labels": {"t": "s"}},
                         "spec": {"persistentVolumeReclaimPolicy": "Retain",
                                  "claimRef": {"namespace": "shop", "name": "logs"}}}),
        archived_volume({"metadata": {"name": "pv-free"}, "spec": {}}),
        ArchivedVolume(name="pv-1", claim_namespace="shop", claim="data"),
    ]  # fmt: skip
    # without disks: every PV is skipped, with the reason
    records = volume_infos(None, archived)
    assert [r["pvName"] for r in records] == ["pv-1", "pv-2", "pv-free"]
    for record in records:
        assert_velero_shape(record)
        assert record["skippedReason"] == f"any: {NO_DISKS};"
    logs = records[1]
    assert (logs["pvcNamespace"], logs["pvcName"]) == ("shop", "logs")
    assert logs["pvInfo"] == {"reclaimPolicy": "Retain", "labels": {"t": "s"}}
    assert "pvcName" not in records[2]  # a PV without a claim: Go leaves it out
    # with disks: the console's record for its claims, once each; an unbound claim has none
    worked = [entry(method="snapshot", snapshot=KEPT),
              entry(claim="new", pv_name="", state=SKIPPED, reason="not bound")]  # fmt: skip
    records = volume_infos(worked, archived)
    assert [r["pvName"] for r in records] == ["pv-1", "pv-2", "pv-free"]
    assert records[0]["backupMethod"] == "CSISnapshot"
    assert "no claim" in records[1]["skippedReason"]
    assert volume_infos([], []) == []


def test_the_collector_reports_the_pvs_it_writes():
    pv = {"metadata": {"name": "pv-9", "labels": {"k": "v"}},
          "spec": {"persistentVolumeReclaimPolicy": "Retain",
                   "claimRef": {"namespace": "ns", "name": "c"}}}  # fmt: skip
    skipped = {"metadata": {"name": "pv-x", "labels": {"velero.io/exclude-from-backup": "true"}}}
    page = decode_page(json.dumps({"metadata": {}, "items": [pv, skipped]}).encode())
    rtype = ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False)
    collector = Collector(kube=None, mtime=0, workers=1)
    try:
        batch = collector._batch(Unit(rtype), page.items, b'{"apiVersion":"v1",')
    finally:
        collector.close()
    assert batch.names == ["pv-9"]
    assert batch.volumes == [ArchivedVolume("pv-9", "ns", "c", "Retain", {"k": "v"})]


def test_go_prints_durations_without_leading_zero_units():
    assert go_duration(timedelta(minutes=10)) == "10m0s"
    assert go_duration(timedelta(hours=4)) == "4h0m0s"
    assert go_duration(timedelta(seconds=5)) == "5s"
    assert go_duration(timedelta(0)) == "0s"
    assert go_duration(timedelta(hours=720)) == "720h0m0s"


def _spec(**options) -> dict:
    return backup_document(
        name="b", location_name="store", options=BackupSpec(**options), phase="Completed",
        started=START, expires=START, snapshot_timeout=timedelta(seconds=300),
    )["spec"]  # fmt: skip


def test_the_spec_has_the_defaults_velero_fills_in():
    spec = _spec()
    assert spec["csiSnapshotTimeout"] == "10m0s" and spec["itemOperationTimeout"] == "4h0m0s"
    assert (
        spec["ttl"] == "720h0m0s"
        and spec["volumeGroupSnapshotLabelKey"] == "velero.io/volume-group"
    )
    assert spec["snapshotVolumes"] is False and spec["snapshotMoveData"] is False
    assert spec["defaultVolumesToFsBackup"] is False


def test_with_volume_data_the_spec_says_what_the_console_did():
    spec = _spec(include_disks=True)
    assert spec["csiSnapshotTimeout"] == "5m0s"  # the console's own wait
    assert spec["defaultVolumesToFsBackup"] is True
    # Velero restores the console's snapshots only when the backup asks for no data mover
    assert spec["snapshotMoveData"] is False
    assert _spec(include_disks=True, volume_mode="snapshot")["defaultVolumesToFsBackup"] is False


def test_the_status_counts_the_kept_snapshots_as_velero_does():
    from backups.engine.volumes.records import operation_counts

    failed = {**KEPT, "name": "vs2", "ready": False}
    entries = [entry(method="snapshot", snapshot=KEPT), entry(method="copy", copy=COPY),
               entry(claim="b", method="snapshot", snapshot=failed, state=FAILED)]  # fmt: skip
    counts = operation_counts(entries)
    assert counts == {
        "csiVolumeSnapshotsAttempted": 2, "csiVolumeSnapshotsCompleted": 1,
        "backupItemOperationsAttempted": 2, "backupItemOperationsCompleted": 1,
        "backupItemOperationsFailed": 1,
    }  # fmt: skip
    status = backup_document(
        name="b", location_name="s", options=BackupSpec(), phase="Completed", started=START,
        expires=START, volume_counts=counts,
    )["status"]  # fmt: skip
    assert status["backupItemOperationsAttempted"] == 2
    assert operation_counts([entry(method="copy", copy=COPY)]) == {}  # omitempty: no zeros
