"""Disaster drills on cluster A: the console restores etcd from its own snapshot.

The two drills stop cluster A's API server and etcd for a few seconds and roll
cluster A back to the snapshot (taken seconds before), so they are few and
short; every other test here leaves the cluster alone. Whatever happens, the
cluster is started again and must answer /readyz at the end.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from backups.engine.etcd.restore import restore_locally
from backups.engine.etcd.snapshot import take_snapshot
from backups.engine_inputs import local_target, snapshot_request, snapshot_restore_request
from backups.jobs.etcd import record_completed
from backups.models import EtcdSnapshot, Status
from devenv import clusters as devenv_clusters
from devenv.testing import kube_api_client, unique
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_a(db, devenv):
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    return Cluster.objects.create(
        workspace=factories.workspace(unique("drill")),
        name=unique("cluster-a"),
        kubeconfig=flatten_kubeconfig(path.read_text(), path.parent),
        etcd_endpoint=devenv["CLUSTER_A_ETCD_ENDPOINT"],
        etcd_ca=Path(devenv["CLUSTER_A_ETCD_CA"]).read_text(),
        etcd_cert=Path(devenv["CLUSTER_A_ETCD_CERT"]).read_text(),
        etcd_key=Path(devenv["CLUSTER_A_ETCD_KEY"]).read_text(),
    )


@pytest.fixture
def disk(cluster_a, tmp_path):
    return factories.location(cluster_a.workspace, unique("disk"), path=str(tmp_path))


@pytest.fixture
def core(devenv):
    """A CoreV1Api that reconnects after the API server restarts (a fresh pool per call)."""

    def make():
        return client.CoreV1Api(kube_api_client(devenv["CLUSTER_A_KUBECONFIG"]))

    return make


@pytest.fixture
def cluster_left_running():
    """After the test, cluster A runs and answers /readyz, whatever the test did."""
    yield
    for component in devenv_clusters.COMPONENTS:
        devenv_clusters.start_component("a", component)
    deadline = time.monotonic() + 90
    while not devenv_clusters.component_ready("a", "kube-apiserver"):
        assert time.monotonic() < deadline, "cluster A's API server is not ready after the test"
        time.sleep(0.5)


def _snapshot(cluster, location) -> EtcdSnapshot:
    row = EtcdSnapshot.objects.create(
        name=unique(f"{cluster.name}-etcd"),
        workspace=cluster.workspace,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        status=Status.RUNNING,
    )
    outcome = take_snapshot(snapshot_request(row), progress=lambda *_: None, log=print)
    assert outcome.ok, outcome.error
    record_completed(row, outcome)
    return row


def _namespace_with_config_maps(core, name: str, count: int = 3) -> dict[str, dict]:
    api = core()
    api.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"palette.io/test": "true"})
        )
    )
    maps = {f"settings-{i}": {"index": str(i), "owner": name} for i in range(count)}
    for cm, data in maps.items():
        api.create_namespaced_config_map(
            name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=cm), data=data)
        )
    return maps


def _wait_gone(core, name: str, timeout: float = 90) -> None:
    api = core()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.read_namespace(name)
        except ApiException as err:
            if err.status == 404:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"namespace {name} was not deleted within {timeout} s")


def _delete_namespace(core, name: str) -> None:
    try:
        core().delete_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise


def test_only_the_local_clusters_are_restored_by_the_console(cluster_a, db, devenv):
    target = local_target(cluster_a)
    assert target is not None and target.name == "a"
    assert str(target.data_dir) == devenv["CLUSTER_A_ETCD_DATA_DIR"]
    other = factories.cluster(cluster_a.workspace, etcd_endpoint="https://10.0.0.5:2379")
    assert local_target(other) is None
    assert local_target(factories.cluster(cluster_a.workspace)) is None


def test_a_cancelled_restore_stops_nothing(cluster_a, disk, core):
    row = _snapshot(cluster_a, disk)
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 2  # after the download and the verification

    lines = []
    request = snapshot_restore_request(row)
    result = restore_locally(request, log=lines.append, should_stop=should_stop)
    assert result.cancelled and result.phase == "Cancelled" and not result.ok
    assert [s.key for s in result.steps] == ["download", "verify"]
    assert "nothing changed" in result.error
    assert devenv_clusters.component_ready("a", "kube-apiserver")
    assert not list(Path(result.data_dir).parent.glob("etcd-restore-*"))  # work dir removed


def test_an_etcd_of_another_cluster_id_is_not_restored(cluster_a, disk):
    row = _snapshot(cluster_a, disk)
    request = snapshot_restore_request(row)
    wrong = replace(request, etcd=replace(request.etcd, expected_cluster_id=1))
    result = restore_locally(wrong, log=lambda line: None)
    assert not result.ok and "not 1 recorded" in result.error
    assert [s.key for s in result.steps] == ["download", "verify"]
    assert devenv_clusters.component_ready("a", "kube-apiserver")


def test_a_damaged_snapshot_is_refused_before_anything_stops(cluster_a, disk, tmp_path, core):
    row = _snapshot(cluster_a, disk)
    stored = tmp_path / row.object_key
    stored.write_bytes(stored.read_bytes()[:-1] + b"!")
    lines = []
    result = restore_locally(snapshot_restore_request(row), log=lines.append)
    assert not result.ok and "not the recorded" in result.error
    assert [s.key for s in result.steps] == ["download", "verify"]
    assert devenv_clusters.component_ready("a", "kube-apiserver")
    assert not list(Path(result.data_dir).parent.glob("etcd-restore-*"))  # work dir removed

    pending = EtcdSnapshot.objects.create(
        name=unique("pending"),
        workspace=cluster_a.workspace,
        cluster=cluster_a,
        cluster_name=cluster_a.name,
        location=disk,
    )
    result = restore_locally(snapshot_restore_request(pending), log=lines.append)
    assert not result.ok and "did not complete" in result.error and not result.steps


def test_disaster_drill_restores_deleted_objects(cluster_a, disk, core, cluster_left_running):
    name = unique("drill")
    maps = _namespace_with_config_maps(core, name)
    try:
        row = _snapshot(cluster_a, disk)
        api = core()
        for cm in maps:
            api.delete_namespaced_config_map(cm, name)
        api.delete_namespace(name)
        _wait_gone(core, name)

        lines = []
        started = time.monotonic()
        result = restore_locally(snapshot_restore_request(row), log=lines.append)
        print("\n".join(["", *lines]))
        assert result.ok, result.error
        print(
            f"[etcd drill] snapshot {row.size_bytes / 1e6:.1f} MB; restore "
            f"{time.monotonic() - started:.1f} s, API server down {result.downtime_seconds:.1f} s; "
            + ", ".join(f"{s.key} {s.seconds:.1f}s" for s in result.steps)
        )
        assert [s.key for s in result.steps] == [
            "download",
            "verify",
            "stop-apiservers",
            "stop-etcd",
            "restore",
            "start-etcd",
            "start-apiservers",
            "check",
        ]
        assert result.cluster_running and not result.rolled_back
        assert result.revision >= row.revision
        assert result.revision_after >= result.revision + 1_000_000  # --bump-revision
        assert Path(result.previous_data_dir).is_dir()
        assert any(
            "--bump-revision=1000000" in line and "--mark-compacted" in line for line in lines
        )

        api = core()
        assert api.read_namespace(name).status.phase == "Active"
        for cm, data in maps.items():
            assert api.read_namespaced_config_map(cm, name).data == data
    finally:
        _delete_namespace(core, name)


# The target's control command, except that the first start of etcd fails.
FAIL_FIRST_ETCD_START = """
import os, subprocess, sys
marker, *command = sys.argv[1:]
if command[-3] == "start" and command[-1] == "etcd" and not os.path.exists(marker):
    open(marker, "w").close()
    sys.exit("etcd-a exited while starting (simulated)")
sys.exit(subprocess.call(command))
"""


def test_a_restore_that_fails_after_the_swap_puts_the_old_data_back(
    cluster_a, disk, core, tmp_path, cluster_left_running
):
    row = _snapshot(cluster_a, disk)
    later = unique("after-snapshot")  # exists only in the current data, not in the snapshot
    _namespace_with_config_maps(core, later, count=1)
    script = tmp_path / "control.py"
    script.write_text(FAIL_FIRST_ETCD_START)
    request = snapshot_restore_request(row)
    control = (sys.executable, str(script), str(tmp_path / "failed-once"), *request.target.control)
    request = replace(request, target=replace(request.target, control=control))
    try:
        lines = []
        result = restore_locally(request, log=lines.append)
        print("\n".join(["", *lines]))
        assert not result.ok and result.rolled_back and result.cluster_running
        assert "etcd did not start on the restored data" in result.error
        assert "the previous data was put back" in result.error
        assert result.steps[-1].key == "start-etcd" and not result.steps[-1].ok
        failed = Path(result.data_dir).parent / "etcd.failed-restore"
        assert failed.is_dir()
        # The data in place is the one from before: what was created after the snapshot is there.
        assert core().read_namespace(later).status.phase == "Active"
        shutil.rmtree(failed)  # kept for people to inspect; a test has nothing to inspect
    finally:
        _delete_namespace(core, later)
