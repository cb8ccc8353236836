"""Volume faults on the real nodes: each ends with the volume's reason, the backup or restore
PartiallyFailed (or Cancelled), and nothing temporary left in the cluster or the store.

Hooks (exit codes and output recorded; a failing Fail hook fails only its pod's volumes), a
snapshot that never becomes ready, the store failing mid-copy, the mover pod killed, a
cancel, a dead worker (the reaper) and a run that ended Failed (the sweep), and a restore
whose copy is damaged or missing (that volume fails before its pods start).
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from backups.engine.storage.layout import Layout
from backups.engine_inputs import operation_label
from backups.jobs import BackupJob, reap, run_and_wait, start_backup
from backups.jobs.volumes import sweep_recent
from backups.models import Backup, HookResult, RestoreItem, Status, VolumeResult
from devenv import config as devenv_config
from devenv.testing import kubectl, unique, wait_for
from tests.integration.volume_support import (
    BUSYBOX,
    app_objects,
    apply,
    backup,
    console,
    create_namespace,
    leftovers,
    namespaces,
    restore,
    running_pod,
    write_data,
)

pytestmark = pytest.mark.integration
SLEEPER = ["sh", "-c", "echo ready >/data/ready; exec sleep 100000"]


def _hooked(namespace, name, pre, on_error="Fail", with_claim=True):
    annotations = {
        "pre.hook.backup.velero.io/command": json.dumps(pre),
        "pre.hook.backup.velero.io/on-error": on_error,
        "post.hook.backup.velero.io/command": json.dumps(["sh", "-c", "echo thawed"]),
    }
    objects = app_objects(namespace, "local-path", BUSYBOX, command=SLEEPER, name=name,
                          annotations=annotations, size="64Mi")  # fmt: skip
    if not with_claim:
        spec = objects[1]["spec"]["template"]["spec"]
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
        return objects[1:]
    return objects


def test_hooks_are_recorded_and_a_failing_one_fails_only_its_pods_volumes(db, devenv, tmp_path):
    _ws, clusters, location = console(devenv, tmp_path)
    ns = unique("hooks")
    with namespaces(devenv, ("b", ns)):
        create_namespace(devenv, "b", ns)
        apply(devenv, "b", _hooked(ns, "good", ["sh", "-c", "sync; echo frozen"])
              + _hooked(ns, "bad", ["sh", "-c", "echo cannot freeze >&2; exit 3"])
              + _hooked(ns, "plain", ["sh", "-c", "echo no volumes"], with_claim=False))  # fmt: skip
        for app in ("good", "bad", "plain"):
            running_pod(devenv, "b", ns, app)
        made = backup(clusters["B"], location, ns, volume_mode="copy")
        assert made.status == Status.PARTIALLY_FAILED, made.log[-2000:]
        volumes = {v.claim: v for v in VolumeResult.objects.filter(backup=made)}
        assert volumes["good-data"].state == "succeeded"
        assert volumes["bad-data"].state == "failed"
        assert "pre-backup hook" in volumes["bad-data"].reason
        hooks = {(h.pod.split("-")[0], h.phase): h for h in HookResult.objects.filter(backup=made)}
        assert hooks["good", "pre-backup"].exit_code == 0
        assert "frozen" in hooks["good", "pre-backup"].output
        assert hooks["bad", "pre-backup"].exit_code == 3
        assert "cannot freeze" in hooks["bad", "pre-backup"].output
        assert hooks["plain", "pre-backup"].ok, "hooks run for every pod, with volumes or not"
        assert hooks["good", "post-backup"].ok and "thawed" in hooks["good", "post-backup"].output
        assert leftovers(devenv, "b", made) == []


def test_a_snapshot_that_never_becomes_ready_fails_its_volume(db, devenv, tmp_path, monkeypatch):
    _ws, clusters, location = console(devenv, tmp_path)
    monkeypatch.setattr(settings, "PALETTE_SNAPSHOT_TIMEOUT", 8)
    ns = unique("never")
    with namespaces(devenv, ("b", ns)):
        create_namespace(devenv, "b", ns)
        claim = app_objects(ns, devenv["STORAGE_CLASS_CSI"], BUSYBOX, size="16Mi")[0]
        apply(devenv, "b", [claim])

        def bound():
            found = json.loads(kubectl(devenv, "-n", ns, "get", "pvc", "store-data", "-o", "json",
                                       cluster="b"))  # fmt: skip
            return (
                found["spec"].get("volumeName") if found["status"].get("phase") == "Bound" else None
            )

        pv = wait_for(bound, 120, "the CSI claim to bind")
        handle = json.loads(kubectl(devenv, "get", "pv", pv, "-o", "json", cluster="b"))["spec"][
            "csi"]["volumeHandle"]  # fmt: skip
        # The driver's directory of this volume goes: its snapshots fail (archive error).
        volume_dir = devenv_config.STATE_DIR / "csi" / "b" / "data" / "volumes" / handle
        assert volume_dir.is_dir()
        import shutil

        shutil.rmtree(volume_dir)
        made = backup(clusters["B"], location, ns, volume_mode="snapshot")
        assert made.status == Status.PARTIALLY_FAILED, made.log[-2000:]
        volume = VolumeResult.objects.get(backup=made)
        assert volume.state == "failed" and "was not ready after 8 seconds" in volume.reason

        def no_snapshots():
            out = kubectl(devenv, "-n", ns, "get", "volumesnapshots", "-o", "name", cluster="b")
            return out.strip() == ""

        wait_for(no_snapshots, 60, "the failed snapshot to be deleted")
        volume_dir.mkdir(parents=True)  # let the driver delete the volume with the namespace


def _store_files(root: Path, made) -> list[str]:
    base = root / Layout(made.location.prefix).backup_dir(made.name)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def _data_app(devenv, ns, mib):
    create_namespace(devenv, "b", ns)
    apply(devenv, "b", app_objects(ns, "local-path", devenv["DEMO_APP_IMAGE"]))
    pod = running_pod(devenv, "b", ns)
    return write_data(devenv, "b", ns, pod, total_mib=mib)


def test_a_killed_mover_fails_its_volume_and_leaves_nothing(transactional_db, devenv, tmp_path):
    _ws, clusters, location = console(devenv, tmp_path)
    ns = unique("kill")
    with namespaces(devenv, ("b", ns)):
        # Big enough that the copy is still running when the mover is found and killed.
        _data_app(devenv, ns, 160)
        row = start_backup(clusters["B"], location, include_namespaces=[ns], include_disks=True)
        label = f"palette.io/operation={operation_label(row)}"

        def kill():
            def copying():
                volume = VolumeResult.objects.filter(backup=row).first()
                return volume is not None and volume.bytes_done > 0

            def mover():
                out = kubectl(devenv, "-n", ns, "get", "pods", "-l", label, "-o", "name",
                              cluster="b")  # fmt: skip
                return out.strip()

            wait_for(copying, 120, "the copy to be under way")
            name = wait_for(mover, 120, "the mover pod")
            kubectl(devenv, "-n", ns, "delete", name, "--grace-period=0", "--force", cluster="b")

        killer = threading.Thread(target=kill)
        killer.start()
        made = run_and_wait(row)
        killer.join(timeout=150)
        assert made.status == Status.PARTIALLY_FAILED, made.log[-2000:]
        volume = VolumeResult.objects.get(backup=made)
        assert volume.state == "failed" and "mover" in volume.reason
        assert leftovers(devenv, "b", made) == []
        assert not any(name.startswith("volumes/") for name in _store_files(tmp_path, made))


def test_a_cancelled_backup_removes_its_volume_objects_and_copies(transactional_db, devenv,
                                                                  tmp_path):  # fmt: skip
    _ws, clusters, location = console(devenv, tmp_path)
    ns = unique("cancel")
    with namespaces(devenv, ("b", ns)):
        _data_app(devenv, ns, 24)
        row = start_backup(clusters["B"], location, include_namespaces=[ns], include_disks=True)

        def cancel():
            wait_for(lambda: VolumeResult.objects.filter(backup=row, state="running").exists(),
                     120, "the copy to start")  # fmt: skip
            BackupJob.cancel(Backup.objects.get(pk=row.pk))

        canceller = threading.Thread(target=cancel)
        canceller.start()
        made = run_and_wait(row)
        canceller.join(timeout=150)
        assert made.status == Status.CANCELLED, made.log[-2000:]
        assert leftovers(devenv, "b", made) == []
        assert _store_files(tmp_path, made) == []
        assert _snapshots(tmp_path, ns) == []


def test_the_store_failing_mid_copy_fails_the_volume_and_keeps_no_partial_copy(
    db, devenv, tmp_path, monkeypatch
):
    """The location's directory is a real filesystem; the writer fails once 4 MiB are in,
    as a store that went away would (the provider's own error)."""
    from backups.engine.storage.base import Unreachable
    from locations.providers import filesystem

    _ws, clusters, location = console(devenv, tmp_path)
    ns = unique("store")
    original = filesystem.FilesystemProvider.open_write

    def failing_open_write(self, key, content_type="application/octet-stream"):
        writer = original(self, key, content_type)
        if "/volumes/" not in key and not key.startswith(f"volumes-restic/{ns}/data/"):
            return writer
        write = writer.write

        def limited(data):
            if writer.bytes_written > 4 << 20:
                raise Unreachable("The store stopped answering (connection reset).")
            return write(data)

        writer.write = limited
        return writer

    monkeypatch.setattr(filesystem.FilesystemProvider, "open_write", failing_open_write)
    with namespaces(devenv, ("b", ns)):
        _data_app(devenv, ns, 12)
        made = backup(clusters["B"], location, ns)
        assert made.status == Status.PARTIALLY_FAILED, made.log[-2000:]
        volume = VolumeResult.objects.get(backup=made)
        assert volume.state == "failed" and "stopped answering" in volume.reason
        assert not any(name.startswith("volumes/") for name in _store_files(tmp_path, made))
        assert _snapshots(tmp_path, ns) == [], "no restic snapshot of the failed copy"
        assert leftovers(devenv, "b", made) == []


def _snapshots(root: Path, ns: str) -> list[str]:
    folder = root / Layout("").restic_root / ns / "snapshots"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _damage(root: Path, made, ns: str, damage: str) -> None:
    """Damage the backup's copy: a restic pack flipped, or its snapshot gone (a tar file's
    bytes, or the file, for a tar copy)."""
    copy = root / Layout(made.location.prefix).volume_copy(made.name, ns, "store-data")
    repository = root / Layout(made.location.prefix).restic_root / ns
    if not copy.exists():
        if damage == "missing":
            (copy,) = (repository / "snapshots").iterdir()
        else:
            copy = max((p for p in (repository / "data").rglob("*") if p.is_file()),
                       key=lambda p: p.stat().st_size)  # fmt: skip
    if damage == "missing":
        copy.unlink()
        return
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))


def _leftover_pod(devenv, ns, row):
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "palette-mover-left", "namespace": ns,
                     "labels": {"palette.io/operation": operation_label(row)}},
        "spec": {"containers": [{"name": "mover", "image": BUSYBOX, "command": ["sleep", "600"]}],
                 "terminationGracePeriodSeconds": 0},
    }  # fmt: skip
    apply(devenv, "b", [pod])


def test_the_reaper_and_the_sweep_remove_what_dead_or_failed_runs_left(db, devenv, tmp_path):
    _ws, clusters, location = console(devenv, tmp_path)
    ns = unique("reap")
    with namespaces(devenv, ("b", ns)):
        create_namespace(devenv, "b", ns)
        dead = start_backup(clusters["B"], location, include_disks=True, name=unique("dead"))
        old = timezone.now() - timedelta(seconds=settings.OPERATION_HEARTBEAT_TIMEOUT + 60)
        Backup.objects.filter(pk=dead.pk).update(status=Status.RUNNING, started_at=old,
                                                 heartbeat_at=old)  # fmt: skip
        _leftover_pod(devenv, ns, dead)
        assert leftovers(devenv, "b", dead, wait=0) != []
        reap()
        dead.refresh_from_db()
        assert dead.status == Status.FAILED
        assert leftovers(devenv, "b", dead) == [], "the reaper's clean-up"

        failed = start_backup(clusters["B"], location, include_disks=True, name=unique("failed"))
        Backup.objects.filter(pk=failed.pk).update(status=Status.FAILED, finished_at=timezone.now(),
                                                   error="the cluster was unreachable")  # fmt: skip
        _leftover_pod(devenv, ns, failed)
        assert sweep_recent() >= 1
        assert leftovers(devenv, "b", failed) == [], "the sweep"


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_or_missing_copy_fails_its_volume_before_its_pods(db, devenv, tmp_path, damage):
    _ws, clusters, location = console(devenv, tmp_path)
    ns, target = unique("dmg"), unique("dmg-b")
    with namespaces(devenv, ("b", ns), ("b", target)):
        _data_app(devenv, ns, 3)
        made = backup(clusters["B"], location, ns)
        assert made.status == Status.COMPLETED, made.log[-2000:]
        _damage(tmp_path, made, ns, damage)
        back = restore(made, clusters["B"], {ns: target})
        assert back.status == Status.PARTIALLY_FAILED, back.log[-2000:]
        volume = VolumeResult.objects.get(restore=back)
        assert volume.state == "failed"
        assert ("damaged" if damage == "corrupt" else "missing") in volume.reason
        refused = RestoreItem.objects.filter(restore=back, outcome="failed",
                                             resource="deployments.apps")  # fmt: skip
        assert refused.exists() and "store-data" in refused.first().message
        pods = kubectl(devenv, "-n", target, "get", "pods", "-o", "name", cluster="b")
        assert "store" not in pods, "no pod of the application started"
        claims = kubectl(devenv, "-n", target, "get", "pvc", "-o", "name", cluster="b")
        assert claims.strip() == "" or "Terminating" in kubectl(
            devenv, "-n", target, "get", "pvc", cluster="b"
        )
        assert leftovers(devenv, "b", back) == []
