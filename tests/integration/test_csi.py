"""The CSI driver of devenv holds real bytes: a VolumeSnapshot of a CSI-class claim becomes
readyToUse, and a claim restored from it holds the same files (sha256 of each), proven through
the real external-provisioner, csi-snapshotter, snapshot-controller and kubelet.

``test_csi_sanity`` runs the CSI conformance suite (csi-test's csi-sanity) against a driver
process of its own, on temporary directories.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devenv.testing import kubectl, need

pytestmark = pytest.mark.integration

SNAPSHOT_API = ("snapshot.storage.k8s.io", "v1")


def _kubectl(env: dict, *args: str) -> str:
    # Cluster B: the etcd restore drill stops and rewinds cluster A while other tests run.
    return kubectl(env, *args, cluster="b")


def _wait(what: str, predicate, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _claim(name: str, storage_class: str, source: str | None = None) -> dict:
    spec = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": "64Mi"}},
    }
    if source:
        spec["dataSource"] = {
            "apiGroup": SNAPSHOT_API[0],
            "kind": "VolumeSnapshot",
            "name": source,
        }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


def _pod(name: str, claim: str, image: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "app",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def _bound(core, ns: str, name: str):
    pvc = core.read_namespaced_persistent_volume_claim(name, ns)
    return pvc if pvc.status.phase == "Bound" else None


def _running(core, ns: str, name: str) -> bool:
    return core.read_namespaced_pod(name, ns).status.phase == "Running"


def _checksums(env: dict, ns: str, pod: str) -> dict[str, str]:
    out = _kubectl(env, "exec", "-n", ns, pod, "--", "app", "checksum", "--dir", "/data")
    sums = {}
    for line in out.splitlines():
        digest, path = line.split("  ", 1)
        sums[path] = digest
    return sums


def _written_claim(env: dict, core, ns: str, files: int, size: int):
    """A bound CSI claim ``data`` and a running pod ``writer`` that wrote ``files`` random
    files (``size`` bytes in all) under /data/set: (the claim, {path: sha256})."""
    storage_class, image = need(env, "STORAGE_CLASS_CSI", "DEMO_APP_IMAGE")
    core.create_namespaced_persistent_volume_claim(ns, _claim("data", storage_class))
    pvc = _wait("the CSI claim to bind", lambda: _bound(core, ns, "data"))
    core.create_namespaced_pod(ns, _pod("writer", "data", image))
    _wait("the writer pod to run", lambda: _running(core, ns, "writer"))
    _kubectl(
        env, "exec", "-n", ns, "writer", "--",
        "app", "write", "--dir", "/data/set", "--files", str(files), "--bytes", str(size),
    )  # fmt: skip
    written = _checksums(env, ns, "writer")
    assert len(written) == files, written
    return pvc, written


def test_snapshot_of_a_csi_claim_restores_the_same_bytes(devenv, kube_b, fresh_namespace_b):
    from kubernetes import client

    storage_class, snapshot_class, image = need(
        devenv, "STORAGE_CLASS_CSI", "VOLUME_SNAPSHOT_CLASS", "DEMO_APP_IMAGE"
    )
    ns = fresh_namespace_b
    core = client.CoreV1Api(kube_b)
    custom = client.CustomObjectsApi(kube_b)

    pvc, written = _written_claim(devenv, core, ns, files=7, size=300000)
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.csi.driver == devenv["CSI_DRIVER_NAME"]

    group, version = SNAPSHOT_API
    snapshot = {
        "apiVersion": f"{group}/{version}",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "snap"},
        "spec": {
            "volumeSnapshotClassName": snapshot_class,
            "source": {"persistentVolumeClaimName": "data"},
        },
    }
    custom.create_namespaced_custom_object(group, version, ns, "volumesnapshots", snapshot)

    def ready():
        snap = custom.get_namespaced_custom_object(group, version, ns, "volumesnapshots", "snap")
        status = snap.get("status") or {}
        assert not status.get("error"), status["error"]
        return snap if status.get("readyToUse") else None

    snap = _wait("the VolumeSnapshot to be readyToUse", ready)
    assert snap["status"]["restoreSize"]
    # Written after the snapshot: must not appear in the restored claim.
    _kubectl(
        devenv, "exec", "-n", ns, "writer", "--",
        "app", "write", "--dir", "/data/later", "--files", "1", "--bytes", "10",
    )  # fmt: skip

    core.create_namespaced_persistent_volume_claim(ns, _claim("restored", storage_class, "snap"))
    restored_pvc = _wait("the restored claim to bind", lambda: _bound(core, ns, "restored"))
    assert restored_pvc.spec.volume_name != pvc.spec.volume_name
    core.create_namespaced_pod(ns, _pod("reader", "restored", image))
    _wait("the reader pod to run", lambda: _running(core, ns, "reader"))
    assert _checksums(devenv, ns, "reader") == written

    # The claims' volumes are gone once the claims are (reclaim policy Delete). Graceful
    # deletion: the kubelet removes a pod only after it unpublished the pod's volumes.
    for pod in ("writer", "reader"):
        core.delete_namespaced_pod(pod, ns)
    names = {pvc.spec.volume_name, restored_pvc.spec.volume_name}
    _wait("the pods to go", lambda: not core.list_namespaced_pod(ns).items)
    custom.delete_namespaced_custom_object(group, version, ns, "volumesnapshots", "snap")
    for claim in ("data", "restored"):
        core.delete_namespaced_persistent_volume_claim(claim, ns)

    def volumes_gone():
        left = {v.metadata.name for v in core.list_persistent_volume().items}
        return not (names & left)

    _wait("the claims' volumes to be deleted", volumes_gone)


@pytest.mark.parametrize("cluster", ["a", "b"])
def test_the_kubelet_registered_the_driver(devenv, request, cluster):
    """The driver's own registration socket stands in for node-driver-registrar: the kubelet
    lists the driver in its CSINode with the node's id, and the CSIDriver needs no attach."""
    from kubernetes import client

    api = request.getfixturevalue(f"kube_{cluster}")
    (node, driver_name) = need(devenv, f"CLUSTER_{cluster.upper()}_NODE", "CSI_DRIVER_NAME")
    csinode = client.StorageV1Api(api).read_csi_node(node)
    drivers = {d.name: d for d in csinode.spec.drivers or []}
    assert driver_name in drivers, csinode.spec.drivers
    assert drivers[driver_name].node_id == node
    assert client.StorageV1Api(api).read_csi_driver(driver_name).spec.attach_required is False


def _gone(core, ns: str, name: str) -> bool:
    return name not in {p.metadata.name for p in core.list_namespaced_pod(ns).items}


def _host_checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_csi_volume_keeps_its_bytes_across_pods(devenv, kube_b, fresh_namespace_b):
    """Done-when 2 for the CSI class: the bytes a pod wrote are in the driver's directory for
    the volume on the host, and a new pod on the same claim reads them back."""
    from kubernetes import client

    from devenv import csi
    from devenv.clusters import CLUSTERS

    ns = fresh_namespace_b
    core = client.CoreV1Api(kube_b)
    pvc, written = _written_claim(devenv, core, ns, files=5, size=50000)

    handle = core.read_persistent_volume(pvc.spec.volume_name).spec.csi.volume_handle
    on_host = csi.data_dir(CLUSTERS["b"]) / "volumes" / handle
    assert _host_checksums(on_host) == written

    core.delete_namespaced_pod("writer", ns)
    _wait("the writer pod to go", lambda: _gone(core, ns, "writer"))
    core.create_namespaced_pod(ns, _pod("reader", "data", devenv["DEMO_APP_IMAGE"]))
    _wait("the reader pod to run", lambda: _running(core, ns, "reader"))
    assert _checksums(devenv, ns, "reader") == written


# --- the conformance suite ----------------------------------------------------------------


def test_csi_sanity(tmp_path):
    """csi-sanity against a driver of its own: idempotency, error codes, snapshots, pages,
    node publish and unpublish (real bind mounts)."""
    from devenv import gobuild

    if os.geteuid() != 0:
        pytest.fail("the CSI driver bind-mounts volumes: run the integration tests as root")
    for comp in (gobuild.CSI_DRIVER, gobuild.CSI_SANITY):
        gobuild.build(comp)
    sock = tmp_path / "csi.sock"
    log = (tmp_path / "driver.log").open("wb")
    driver = subprocess.Popen(
        [
            str(gobuild.CSI_DRIVER.paths()["csi-hostpath"]),
            f"--endpoint={sock}",
            f"--data-dir={tmp_path / 'data'}",
            "--node-id=sanity-node",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait("the driver's socket", sock.is_socket, timeout=20)
        proc = subprocess.run(
            [
                str(gobuild.CSI_SANITY.paths()["csi-sanity"]),
                f"--csi.endpoint={sock}",
                f"--csi.mountdir={tmp_path / 'mount'}",
                f"--csi.stagingdir={tmp_path / 'staging'}",
                "--ginkgo.no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        driver.send_signal(signal.SIGTERM)
        driver.wait(timeout=20)
        log.close()
    summary = [line for line in proc.stdout.splitlines() if "Passed" in line or "FAIL" in line]
    assert proc.returncode == 0, (
        proc.stdout[-6000:] + "\n--- driver log:\n" + Path(log.name).read_text()[-3000:]
    )
    assert any("Passed" in line for line in summary), proc.stdout[-2000:]
    state = json.loads((tmp_path / "data" / "state.json").read_text())
    assert state["volumes"] == {} and state["snapshots"] == {}, "csi-sanity left objects behind"


def test_driver_go_tests():
    """The driver's own `go test` (archive round trip and escapes, controller, bind mounts),
    so that CI runs it with the rest."""
    from devenv import config, gobuild

    go = gobuild.go_binary()
    if go is None:
        pytest.fail("Go is not installed: the CSI driver is built and tested with it")
    proc = subprocess.run(
        [go, "test", "-count=1", "./..."],
        cwd=config.GO_DIR / gobuild.CSI_DRIVER.module_dir,
        env=gobuild.go_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "ok  \tpalette.local/devenv/csi-hostpath/driver" in proc.stdout, proc.stdout
