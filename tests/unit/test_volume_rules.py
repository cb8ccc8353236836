"""The pure rules of the volume work: snapshot class choice, methods, hooks, records."""

from __future__ import annotations

import pytest

from backups.engine.volumes import hooks
from backups.engine.volumes.objects import (
    choose_snapshot_class,
    decide_method,
    excluded_volumes,
    label_value,
    mover_pod,
    parse_quantity,
)
from backups.engine.volumes.records import (
    SKIPPED,
    SUCCEEDED,
    VolumeEntry,
    item_operation,
)
from backups.engine.volumes.restore import mounted_claims
from backups.engine.volumes.velero_info import volume_info
from backups.naming import parse_class_mapping, parse_volume_policy


def _class(name, driver, labelled=False):
    labels = {"velero.io/csi-volumesnapshot-class": "true"} if labelled else {}
    return {"metadata": {"name": name, "labels": labels}, "driver": driver}


def test_it_chooses_the_velero_labelled_class_of_the_driver():
    classes = [_class("a", "d1"), _class("b", "d1", labelled=True), _class("c", "d2", True)]
    assert choose_snapshot_class(classes, "d1") == ("b", "")


def test_it_chooses_the_drivers_only_class():
    assert choose_snapshot_class([_class("a", "d1"), _class("z", "d2")], "d1") == ("a", "")


def test_it_says_why_there_is_no_class():
    assert "no VolumeSnapshotClass" in choose_snapshot_class([], "d1")[1]
    name, why = choose_snapshot_class([_class("a", "d1"), _class("b", "d1")], "d1")
    assert name == "" and "several" in why and "a, b" in why


@pytest.mark.parametrize(
    ("mode", "policy", "has_class", "expected"),
    [
        ("auto", None, True, (True, True)),
        ("auto", None, False, (False, True)),
        ("snapshot", None, True, (True, False)),
        ("snapshot", None, False, (False, True)),
        ("copy", None, True, (False, True)),
        ("snapshot_and_copy", "skip", True, (False, False)),
        ("copy", "snapshot", True, (True, False)),
    ],
)
def test_the_storage_class_policy_wins_over_the_mode(mode, policy, has_class, expected):
    assert decide_method(mode, policy, has_class)[:2] == expected


def test_excludes_annotation_lists_volume_names():
    pod = {"metadata": {"annotations": {"backup.velero.io/backup-volumes-excludes": "a, b,"}}}
    assert excluded_volumes(pod) == {"a", "b"}


@pytest.mark.parametrize(
    ("text", "size"),
    [("64Mi", 64 << 20), ("1G", 10**9), ("2Gi", 2 << 30), ("100", 100), ("bad", 0), ("", 0)],
)
def test_quantities(text, size):
    assert parse_quantity(text) == size


def test_label_values_fit():
    long = label_value("backup-" + "x" * 100)
    assert len(long) <= 63 and long[-7] == "-"
    assert label_value("restore-12") == "restore-12"


def test_the_mover_mounts_read_only_for_a_backup_and_ends_itself():
    pod = mover_pod("ns", "data", operation="backup-1", image="busybox", read_only=True,
                    deadline=600, node="n1")  # fmt: skip
    spec = pod["spec"]
    assert pod["metadata"]["labels"]["palette.io/operation"] == "backup-1"
    assert spec["activeDeadlineSeconds"] == 600 and spec["nodeName"] == "n1"
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "data", "readOnly": True}
    assert spec["containers"][0]["volumeMounts"][0]["readOnly"] is True


def test_hook_annotations_with_velero_defaults():
    pod = {
        "metadata": {"annotations": {"pre.hook.backup.velero.io/command": '["sh", "-c", "sync"]'}},
        "spec": {"containers": [{"name": "app"}, {"name": "side"}]},
    }
    hook = hooks.pod_hook(pod, hooks.PRE_BACKUP)
    assert hook.command == ("sh", "-c", "sync") and hook.container == "app"
    assert hook.fail_on_error and hook.timeout == 30
    assert hooks.pod_hook(pod, hooks.POST_BACKUP) is None
    pod["metadata"]["annotations"].update({
        "pre.hook.backup.velero.io/on-error": "Continue",
        "pre.hook.backup.velero.io/timeout": "1m30s",
        "pre.hook.backup.velero.io/container": "side",
    })  # fmt: skip
    hook = hooks.pod_hook(pod, hooks.PRE_BACKUP)
    assert not hook.fail_on_error and hook.timeout == 90 and hook.container == "side"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("2m", 120), ("500ms", 0.5), ("5", 5), ("junk", 7)]
)
def test_durations(text, seconds):
    assert hooks.parse_duration(text, 7) == seconds


def test_an_init_hook_becomes_an_init_container_with_the_pods_mounts():
    pod = {
        "metadata": {"annotations": {
            "init.hook.restore.velero.io/container-image": "busybox",
            "init.hook.restore.velero.io/command": '["touch", "/data/restored"]',
        }},
        "spec": {"containers": [{"name": "a", "volumeMounts": [{"name": "d", "mountPath": "/data"}]}]},
    }  # fmt: skip
    container = hooks.init_container(pod)
    assert container["image"] == "busybox" and container["command"] == ["touch", "/data/restored"]
    assert container["volumeMounts"] == [{"name": "d", "mountPath": "/data"}]


def test_workloads_name_the_claims_they_mount():
    deployment = {"spec": {"template": {"spec": {"volumes": [
        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "e", "emptyDir": {}},
    ]}}}}  # fmt: skip
    cron = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"volumes": [
        {"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]}}}}}}  # fmt: skip
    assert mounted_claims(deployment) == {"data"}
    assert mounted_claims(cron) == {"c"}


def _entry(**kw):
    base = dict(namespace="ns", claim="data", pv_name="pv-1", driver="d1", state=SUCCEEDED,
                reclaim_policy="Delete")  # fmt: skip
    return VolumeEntry(**{**base, **kw})


def test_a_kept_snapshot_is_velero_csi_snapshot_record():
    snapshot = {"name": "vs", "content": "vsc", "handle": "h", "ready": True, "kept": True,
                "restore_size": 10, "operation_id": "ns/vs/2026-01-01T00:00:00Z"}  # fmt: skip
    entry = _entry(snapshot=snapshot)
    record = volume_info(entry)
    assert record["backupMethod"] == "CSISnapshot"
    assert record["preserveLocalSnapshot"] is True and record["snapshotDataMoved"] is False
    assert record["csiSnapshotInfo"] == {
        "snapshotHandle": "h", "size": 10, "driver": "d1", "vscName": "vsc",
        "operationID": "ns/vs/2026-01-01T00:00:00Z", "ReadyToUse": True,
    }  # fmt: skip
    operation = item_operation(entry, "b", "")
    assert operation["spec"]["backupItemAction"] == "velero.io/csi-volumesnapshot-backupper"
    assert operation["spec"]["operationID"] == snapshot["operation_id"]
    names = [i["Name"] for i in operation["spec"]["postOperationItems"]]
    assert names == ["vs", "vsc"] and operation["status"]["phase"] == "Completed"


def test_copies_and_skips_are_recorded_as_velero_reads_them():
    moved = volume_info(_entry(snapshot={"name": "t", "kept": False, "handle": "h"},
                               copy={"key": "k", "size": 5}))  # fmt: skip
    assert moved["snapshotDataMoved"] is True
    assert moved["snapshotDataMovementInfo"]["dataMover"] == "palette"
    live = volume_info(_entry(copy={"key": "k", "size": 5}, method="copy"))
    assert live["backupMethod"] == "PodVolumeBackup" and live["pvbInfo"]["uploaderType"] == "tar"
    skipped = volume_info(_entry(state=SKIPPED, reason="excluded"))
    # Go's omitempty: a skipped volume has no method and no result
    assert skipped["skipped"] is True and "backupMethod" not in skipped
    assert skipped["skippedReason"] == "any: excluded;" and "result" not in skipped
    assert item_operation(_entry(), "b", "") is None


def test_entries_round_trip_through_their_json():
    entry = _entry(copy={"key": "k", "size": 5, "sha256": "s"}, method="copy")
    again = VolumeEntry.from_json(entry.as_json())
    assert again.copy == entry.copy and again.key == "ns/data"


def test_class_mappings_and_policies_are_checked():
    assert parse_class_mapping("a=b, c.example=d") == {"a": "b", "c.example": "d"}
    assert parse_volume_policy("scratch=skip,local-path=copy") == {
        "scratch": "skip", "local-path": "copy"}  # fmt: skip
    for bad in ("a", "a=", "A=b", "a=b,a=c"):
        with pytest.raises(ValueError):
            parse_class_mapping(bad)
    with pytest.raises(ValueError, match="not one of"):
        parse_volume_policy("a=fast")
