"""The real Velero (v1.18, devenv/velero.py) and the console restore each other's CSI
snapshots of a claim, byte for byte.

On cluster B (the etcd restore drill rewinds A while other tests run), whose devenv CSI
driver has a VolumeSnapshotClass labelled ``velero.io/csi-volumesnapshot-class=true``, an
application writes known files into a CSI-class claim; then

- a console backup with "Include all disks" in mode "snapshot" (a kept CSI snapshot, no
  copy) is synced by a Velero server on B, ``velero backup describe --details`` lists the
  CSI snapshot, and ``velero restore create --namespace-mappings`` brings the claim back,
  bound from that snapshot, into a new namespace;
- a Velero backup of the namespace is imported by ``sync_location`` and restored by the
  console with ``--restore-pvs`` into a new namespace, the claim from Velero's snapshot.

Velero 1.18 has its CSI actions built in (no CSI plugin), but its server still runs them
only with the feature flag ``EnableCSI`` (``devenv.velero.CSI_FEATURES``).

Each time a pod mounting the restored claim reads the same files (sha256 of each). A CSI
snapshot restores only where its storage is, hence one cluster for everything. Names are
unique to the run; each test deletes what it made: its namespaces, the Velero server and its
namespace, the backups' snapshots (the console's by deleting its backup, Velero's with
``velero backup delete``) and the contents the restores made.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from django.core.management import call_command

from backups.jobs import delete_backup
from backups.models import Backup, Restore, Status, VolumeResult
from devenv import velero
from devenv.testing import kubectl, need, wait_for
from tests import factories
from tests.integration import velero_support as support
from tests.integration.volume_support import (
    app_objects,
    apply,
    checksums,
    create_namespace,
    leftovers,
    running_pod,
    write_data,
)
from workspaces.models import Cluster

pytestmark = pytest.mark.integration

CLUSTER = "b"
CLAIM = "store-data"  # the claim of volume_support's application
DATA_MIB = 3  # 1,000 small files and one of 1 MiB: enough to tell, quick to snapshot


@pytest.fixture
def world(db, devenv, minio_bucket):
    """The console with cluster B, a source namespace holding the application with known
    files, a target namespace name; the test's cleanups run afterwards (last first), then
    its Velero servers stop, then its namespaces go."""
    if not velero.binaries_available():
        pytest.fail("Velero is not built: `python -m devenv up` builds it (devenv/velero.py)")
    storage_class, image = need(devenv, "STORAGE_CLASS_CSI", "DEMO_APP_IMAGE")
    run = uuid.uuid4().hex[:8]
    ws = factories.workspace("Velero CSI")
    cluster = Cluster.objects.create(workspace=ws, name=f"csi-{run}",
                                     kubeconfig=support.kubeconfig(devenv, CLUSTER.upper()))  # fmt: skip
    source, target = f"vcsi-{run}", f"vcsi-{run}-r"
    world = {
        "run": run, "ws": ws, "cluster": cluster, "bucket": minio_bucket,
        "source": source, "target": target, "servers": [], "cleanups": [],
    }  # fmt: skip
    try:
        create_namespace(devenv, CLUSTER, source)
        apply(devenv, CLUSTER, app_objects(source, storage_class, image, size="64Mi"))
        pod = running_pod(devenv, CLUSTER, source)
        world["sums"] = write_data(devenv, CLUSTER, source, pod, total_mib=DATA_MIB)
        assert len(world["sums"].splitlines()) == 1001
        yield world
    finally:
        for cleanup in reversed(world["cleanups"]):
            with contextlib.suppress(Exception, pytest.fail.Exception):  # kubectl's failure
                cleanup()
        for server in world["servers"]:
            server.stop()
        for namespace in (target, source):
            with contextlib.suppress(Exception, pytest.fail.Exception):
                kubectl(devenv, "delete", "namespace", namespace, "--ignore-not-found",
                        "--wait=false", cluster=CLUSTER)  # fmt: skip


def get_json(devenv, *args: str) -> dict:
    return json.loads(kubectl(devenv, "get", *args, "-o", "json", cluster=CLUSTER))


def restored_claim(devenv, namespace: str) -> dict:
    """The restored claim, once Bound; it names a VolumeSnapshot as its data source."""

    def bound():
        claim = get_json(devenv, "-n", namespace, "pvc", CLAIM)
        return claim if (claim.get("status") or {}).get("phase") == "Bound" else None

    claim = wait_for(bound, 180, f"the restored claim {namespace}/{CLAIM} to be Bound")
    assert (claim["spec"].get("dataSource") or {}).get("kind") == "VolumeSnapshot", claim["spec"]
    return claim


def delete_contents(devenv, selector: str) -> None:
    """Delete the VolumeSnapshotContents labelled ``selector`` (cluster-scoped: their
    namespace's deletion leaves them)."""
    kubectl(devenv, "delete", "volumesnapshotcontents", "-l", selector, "--ignore-not-found",
            "--wait=false", cluster=CLUSTER)  # fmt: skip


def delete_velero_backup(server: velero.Server, name: str) -> None:
    """``velero backup delete``: Velero deletes the snapshot it left in the storage."""
    server.cli("backup", "delete", name, "--confirm")
    wait_for(lambda: server.get("backup", name) is None, 180, f"Velero to delete backup {name}")


def test_velero_restores_the_consoles_csi_snapshot(devenv, world, capsys):
    source, target, run = world["source"], world["target"], world["run"]
    prefix = f"console-{run}"
    location = support.minio_location(devenv, world, f"csi-{run}", prefix)
    name = f"console-{run}"
    call_command("backup", world["cluster"].name, "--location", location.name, "--name", name,
                 "--include-namespaces", source, "--include-disks", "--volume-mode", "snapshot",
                 "--wait")  # fmt: skip
    assert capsys.readouterr().out.split()[-1] == "Completed"
    made = Backup.objects.get(name=name, location=location)
    world["cleanups"].append(lambda: delete_backup(made))  # and with it its snapshot
    volume = VolumeResult.objects.get(backup=made)
    assert (volume.method, volume.state) == ("snapshot", "succeeded"), volume.reason
    kept = get_json(devenv, "-n", source, "volumesnapshots", volume.snapshot_name)
    handle = get_json(devenv, "volumesnapshotcontents",
                      kept["status"]["boundVolumeSnapshotContentName"])["status"]["snapshotHandle"]  # fmt: skip

    server = support.start_velero(devenv, world, CLUSTER, prefix, velero.CSI_FEATURES)
    synced = wait_for(lambda: server.get("backup", name), 120, f"Velero to sync backup {name}")
    assert synced["status"]["phase"] == "Completed"
    described = server.cli("backup", "describe", name, "--details", "--colorized=false")
    assert "CSI Snapshots:" in described and f"{source}/{CLAIM}" in described, described
    assert handle in described, described  # from the console's volumeinfo record

    restore = f"velero-{run}"
    world["cleanups"].append(lambda: delete_contents(devenv, f"velero.io/restore-name={restore}"))
    server.cli("restore", "create", restore, "--from-backup", name,
               "--namespace-mappings", f"{source}:{target}")  # fmt: skip
    status = server.wait_phase("restore", restore, timeout=300)["status"]
    assert status["phase"] == "Completed", support.velero_report(server, "restore", restore)
    assert not status.get("errors"), support.velero_report(server, "restore", restore)

    claim = restored_claim(devenv, target)
    made_by_velero = get_json(
        devenv, "-n", target, "volumesnapshots", claim["spec"]["dataSource"]["name"]
    )
    content = get_json(devenv, "volumesnapshotcontents",
                       made_by_velero["status"]["boundVolumeSnapshotContentName"])  # fmt: skip
    assert content["spec"]["source"]["snapshotHandle"] == handle  # the console's snapshot
    pod = running_pod(devenv, CLUSTER, target)
    assert checksums(devenv, CLUSTER, target, pod) == world["sums"]


def test_the_console_restores_veleros_csi_snapshot(devenv, world, capsys):
    source, target, run = world["source"], world["target"], world["run"]
    prefix = f"velero-{run}"
    server = support.start_velero(devenv, world, CLUSTER, prefix, velero.CSI_FEATURES)
    name = f"velero-{run}"
    world["cleanups"].append(lambda: delete_velero_backup(server, name))
    server.cli("backup", "create", name, "--include-namespaces", source)
    done = server.wait_phase("backup", name, timeout=300)
    assert done["status"]["phase"] == "Completed", support.velero_report(server, "backup", name)
    assert done["status"].get("csiVolumeSnapshotsCompleted") == 1, done["status"]
    described = server.cli("backup", "describe", name, "--details", "--colorized=false")
    assert "CSI Snapshots:" in described and f"{source}/{CLAIM}" in described, described

    location = support.minio_location(devenv, world, f"csi-{run}", prefix)
    call_command("sync_location", location.name)
    assert capsys.readouterr().out.splitlines()[0] == "1 backup imported"
    assert Backup.objects.get(name=name, location=location).status == Status.COMPLETED

    call_command("restore", name, "--to", world["cluster"].name, "--location", location.name,
                 "--namespace-mapping", f"{source}={target}", "--restore-pvs", "--wait")  # fmt: skip
    restore_name, phase = capsys.readouterr().out.splitlines()[:2]
    row = Restore.objects.get(name=restore_name)
    assert phase == "Completed", row.log[-3000:]
    volume = VolumeResult.objects.get(restore=row)
    assert (volume.method, volume.state) == ("snapshot", "succeeded"), volume.reason

    restored_claim(devenv, target)  # its VolumeSnapshot went with the restore's cleanup
    pod = running_pod(devenv, CLUSTER, target)
    assert checksums(devenv, CLUSTER, target, pod) == world["sums"]
    assert leftovers(devenv, CLUSTER, row) == []  # its VolumeSnapshot and content went
