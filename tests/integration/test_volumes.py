"""Volume data on the real nodes: what an application wrote comes back byte for byte.

* local-path (no snapshots): a backup copies the live volume through a mover pod; a
  restore into cluster B under a mapped namespace fills a new claim before the
  application starts, and every file's sha256 matches.
* CSI (the devenv driver, with a Velero-labelled class): the backup keeps a snapshot and
  copies from it; a restore into cluster A comes back from the snapshot, one into B from
  the copy; both byte-identical.
* The files the backup writes follow Velero 1.18's volume records.
* Copies are deduplicated (restic): a second backup of the unchanged volume stores under
  1% of it and still comes back byte-identical; deleting the backups forgets their
  snapshots and prunes the repository.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from backups.engine.storage.layout import Layout
from backups.models import Status, VolumeResult
from devenv.testing import unique
from tests.integration.volume_support import (
    apply,
    backup,
    checksums,
    console,
    create_namespace,
    leftovers,
    namespaces,
    restore,
    running_pod,
    write_data,
)

pytestmark = pytest.mark.integration


def _app(devenv, cluster, namespace, storage_class):
    from tests.integration.volume_support import app_objects

    create_namespace(devenv, cluster, namespace)
    apply(devenv, cluster, app_objects(namespace, storage_class, devenv["DEMO_APP_IMAGE"]))
    return running_pod(devenv, cluster, namespace)


def test_a_local_path_volume_comes_back_byte_identical_in_another_cluster(db, devenv, tmp_path):
    _ws, clusters, location = console(devenv, tmp_path)
    source, target = unique("vol"), unique("vol-b")
    with namespaces(devenv, ("a", source), ("b", target)):
        pod = _app(devenv, "a", source, devenv["STORAGE_CLASS_LOCAL"])
        sums = write_data(devenv, "a", source, pod)
        assert len(sums.splitlines()) == 1001

        made = backup(clusters["A"], location, source)
        assert made.status == Status.COMPLETED, made.error or made.log[-2000:]
        volume = VolumeResult.objects.get(backup=made)
        assert (volume.method, volume.state) == ("copy", "succeeded")
        assert volume.bytes_done > 0 and len(volume.copy_sha256) == 64
        assert leftovers(devenv, "a", made) == []

        back = restore(made, clusters["B"], {source: target})
        assert back.status == Status.COMPLETED, back.error or back.log[-2000:]
        assert VolumeResult.objects.get(restore=back).state == "succeeded"
        restored = running_pod(devenv, "b", target)
        assert checksums(devenv, "b", target, restored) == sums
        assert leftovers(devenv, "b", back) == []


def test_a_second_backup_of_an_unchanged_volume_stores_under_one_percent(db, devenv, tmp_path):
    from backups.jobs import delete_backup

    _ws, clusters, location = console(devenv, tmp_path)
    source, target = unique("dedup"), unique("dedup-b")
    with namespaces(devenv, ("a", source), ("b", target)):
        pod = _app(devenv, "a", source, devenv["STORAGE_CLASS_LOCAL"])
        sums = write_data(devenv, "a", source, pod)
        first = backup(clusters["A"], location, source)
        second = backup(clusters["A"], location, source)
        copies = []
        for made in (first, second):
            assert made.status == Status.COMPLETED, made.error or made.log[-2000:]
            (record,) = _gz_json(tmp_path, Layout(location.prefix), made.name, "volumecopies")
            copies.append(record["copy"])
        assert [c["format"] for c in copies] == ["restic", "restic"]
        assert copies[0]["sha256"] == copies[1]["sha256"]
        assert copies[0]["stored"] > copies[0]["size"] // 2
        assert copies[1]["stored"] < copies[1]["size"] // 100, copies
        assert "new bytes stored" in second.log
        repository = tmp_path / Layout(location.prefix).restic_root / source
        assert (repository / "config").is_file()
        assert not (tmp_path / Layout(location.prefix).backup_dir(second.name) / "volumes").exists()

        back = restore(second, clusters["B"], {source: target})
        assert back.status == Status.COMPLETED, back.error or back.log[-2000:]
        assert checksums(devenv, "b", target, running_pod(devenv, "b", target)) == sums

        def files(kind: str) -> list[Path]:  # the store drops folders it emptied
            return [p for p in (repository / kind).rglob("*") if p.is_file()]

        held = sum(p.stat().st_size for p in files("data"))
        delete_backup(second)
        assert len(files("snapshots")) == 1
        delete_backup(first)
        assert files("snapshots") == []
        left = sum(p.stat().st_size for p in files("data"))
        assert left < held // 10, "the prune removed the forgotten snapshots' packs"


def test_a_csi_volume_comes_back_from_its_snapshot_and_from_its_copy(db, devenv, tmp_path):
    _ws, clusters, location = console(devenv, tmp_path)
    source, same, other = unique("csi"), unique("csi-a"), unique("csi-b")
    with namespaces(devenv, ("a", source), ("a", same), ("b", other)):
        pod = _app(devenv, "a", source, devenv["STORAGE_CLASS_CSI"])
        sums = write_data(devenv, "a", source, pod, total_mib=6)

        made = backup(clusters["A"], location, source)
        assert made.status == Status.COMPLETED, made.error or made.log[-2000:]
        volume = VolumeResult.objects.get(backup=made)
        assert (volume.method, volume.state) == ("snapshot_and_copy", "succeeded")
        assert volume.snapshot_name and volume.copy_sha256
        assert leftovers(devenv, "a", made) == []

        from_snapshot = restore(made, clusters["A"], {source: same})
        assert from_snapshot.status == Status.COMPLETED, from_snapshot.log[-2000:]
        assert VolumeResult.objects.get(restore=from_snapshot).method == "snapshot"
        assert checksums(devenv, "a", same, running_pod(devenv, "a", same)) == sums

        from_copy = restore(made, clusters["B"], {source: other})
        assert from_copy.status == Status.COMPLETED, from_copy.log[-2000:]
        assert VolumeResult.objects.get(restore=from_copy).method == "copy"
        assert checksums(devenv, "b", other, running_pod(devenv, "b", other)) == sums
        for cluster, row in (("a", from_snapshot), ("b", from_copy)):
            assert leftovers(devenv, cluster, row) == []

        _check_velero_records(Path(tmp_path), made, source)

        from backups.jobs import delete_backup

        delete_backup(made)
        from devenv.testing import kubectl

        deadline = time.monotonic() + 120  # snapshots go once their finalizers are done
        left = "?"
        while left and time.monotonic() < deadline:
            left = kubectl(devenv, "-n", source, "get", "volumesnapshots", "-o", "name").strip()
            if left:
                time.sleep(1)
        assert left == "", "deleting the backup deletes the snapshots it kept"


def _gz_json(root: Path, layout: Layout, name: str, kind: str):
    return json.loads(gzip.decompress((root / layout.backup_file(name, kind)).read_bytes()))


def _check_velero_records(root: Path, made, namespace: str) -> None:
    """The files of VELERO-FORMAT.md "Volumes": volumeinfo, itemoperations, the tarball's
    claim, VolumeSnapshot and VolumeSnapshotContent."""
    layout = Layout(made.location.prefix)
    (info,) = _gz_json(root, layout, made.name, "volumeinfo")
    assert info["backupMethod"] == "CSISnapshot" and info["pvcNamespace"] == namespace
    assert info["result"] == "succeeded" and info["preserveLocalSnapshot"] is True
    csi = info["csiSnapshotInfo"]
    assert set(csi) == {"snapshotHandle", "size", "driver", "vscName", "operationID", "ReadyToUse"}
    assert csi["ReadyToUse"] is True and csi["snapshotHandle"]
    (operation,) = _gz_json(root, layout, made.name, "itemoperations")
    assert operation["spec"]["backupItemAction"] == "velero.io/csi-volumesnapshot-backupper"
    assert operation["spec"]["operationID"] == csi["operationID"]
    assert operation["spec"]["operationID"].startswith(f"{namespace}/")
    assert operation["status"]["phase"] == "Completed"
    for kind in ("volumesnapshots", "podvolumebackups"):
        assert _gz_json(root, layout, made.name, kind) == []
    doc = json.loads((root / layout.backup_file(made.name, "metadata")).read_bytes())
    assert doc["status"]["backupItemOperationsAttempted"] == 1  # describe lists it
    assert doc["status"]["backupItemOperationsCompleted"] == 1
    assert doc["spec"]["snapshotMoveData"] is False  # Velero restores from the snapshot
    data = (root / layout.backup_file(made.name, "archive")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        items = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}

    def read(path):
        return json.loads(items[path])

    claim = read(f"resources/persistentvolumeclaims/namespaces/{namespace}/store-data.json")
    snapshot_name = claim["metadata"]["annotations"]["velero.io/volume-snapshot-name"]
    assert claim["metadata"]["labels"]["velero.io/volume-snapshot-name"] == snapshot_name
    vs = read(f"resources/volumesnapshots.snapshot.storage.k8s.io/namespaces/{namespace}/"
              f"{snapshot_name}.json")  # fmt: skip
    for key in ("csi-volumesnapshot-handle", "csi-driver-name", "csi-vsc-deletion-policy",
                "csi-volumesnapshot-restore-size"):  # fmt: skip
        assert vs["metadata"]["annotations"][f"velero.io/{key}"] != ""
    vsc_name = vs["status"]["boundVolumeSnapshotContentName"]
    assert vsc_name == csi["vscName"]
    vsc = read(f"resources/volumesnapshotcontents.snapshot.storage.k8s.io/cluster/{vsc_name}.json")
    assert vsc["metadata"]["labels"]["velero.io/backup-name"] == made.name
    assert vsc["status"]["snapshotHandle"] == csi["snapshotHandle"]
    assert not any("palette-mover" in name for name in items), "no temporary object archived"
