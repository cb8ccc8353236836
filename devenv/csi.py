"""A CSI driver with snapshots on each local cluster, with the real Kubernetes CSI machinery.

The driver is devenv's own (``devenv/go/csi-hostpath``, the hostpath driver's behaviour: a
volume is a directory, a snapshot a tar.gz archive of it, a volume from a snapshot is filled
from that archive). It runs as a host process with its data under ``.devenv/csi/<cluster>``
and serves the kubelet's plugin-registration socket itself (node-driver-registrar is not
available here). Around it, as host processes with the cluster's admin kubeconfig:
external-provisioner, csi-snapshotter and snapshot-controller (external-snapshotter), and in
the cluster the VolumeSnapshot CRDs, a CSIDriver, a StorageClass and a VolumeSnapshotClass.

:func:`up` is called per cluster once its node is Ready (it also works without a node: the
controller side then still provisions and snapshots); :func:`down` stops the processes and
removes their sockets (the node's cleanup unmounts what the kubelet left published). Volume
data stays, like etcd's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from . import config, gobuild, procs
from .clusters import CLUSTERS, Cluster

DRIVER_NAME = "hostpath.csi.palette.local"
STORAGE_CLASS = "csi-hostpath"
SNAPSHOT_CLASS = "csi-hostpath-snapclass"
SNAPSHOT_CLASS_LABEL = "velero.io/csi-volumesnapshot-class"
# In the order `up` starts them (`down` stops them in reverse).
PIECES = ("csi-hostpath", "snapshot-controller", "csi-snapshotter", "csi-provisioner")
SNAPSHOT_CRDS = ("volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots")
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


def csi_dir(c: Cluster) -> Path:
    return config.STATE_DIR / "csi" / c.name


def socket_path(c: Cluster) -> Path:
    return csi_dir(c) / "csi.sock"


def data_dir(c: Cluster) -> Path:
    return csi_dir(c) / "data"


def kubelet_root(c: Cluster) -> Path:
    from . import nodes

    return nodes.node_dir(c) / "kubelet"


def registration_socket(c: Cluster) -> Path:
    return kubelet_root(c) / "plugins_registry" / f"{DRIVER_NAME}-reg.sock"


def node_name(c: Cluster) -> str:
    from . import nodes

    return nodes.node_name(c)


def service_name(c: Cluster, piece: str) -> str:
    return f"{piece}-{c.name}"


def port(c: Cluster, piece: str) -> int:
    return config.PORTS[f"{piece}-{c.name}"]


def binary(name: str) -> str:
    for comp in gobuild.CSI_COMPONENTS:
        if name in comp.binaries:
            return str(comp.paths()[name])
    raise KeyError(name)


def binaries_available() -> bool:
    return all(gobuild.is_built(comp) for comp in gobuild.CSI_COMPONENTS)


def _health(c: Cluster, piece: str, path: str) -> Callable[[], bool]:
    url = f"http://{config.HOST}:{port(c, piece)}{path}"
    return lambda: procs.http_ok(url)


def _driver(c: Cluster) -> procs.Service:
    argv = [
        binary("csi-hostpath"),
        f"--driver-name={DRIVER_NAME}",
        f"--endpoint={socket_path(c)}",
        f"--data-dir={data_dir(c)}",
        f"--node-id={node_name(c)}",
        f"--registration-dir={registration_socket(c).parent}",
        f"--health-address={config.HOST}:{port(c, 'csi-hostpath')}",
    ]
    health = _health(c, "csi-hostpath", "/healthz")

    def ready() -> bool:
        return socket_path(c).is_socket() and health()

    return procs.Service(service_name(c, "csi-hostpath"), argv, port(c, "csi-hostpath"), ready)


def _sidecar(c: Cluster, piece: str, *flags: str) -> procs.Service:
    """A CSI sidecar or the snapshot controller: the cluster's admin kubeconfig, no leader
    election (one replica), metrics on its own port as the readiness check."""
    argv = [
        binary(piece),
        f"--kubeconfig={c.kubeconfig}",
        "--leader-election=false",
        f"--http-endpoint={config.HOST}:{port(c, piece)}",
        *flags,
        "--v=2",
    ]
    return procs.Service(
        service_name(c, piece), argv, port(c, piece), _health(c, piece, "/metrics")
    )


def services(c: Cluster) -> list[procs.Service]:
    sock = f"--csi-address={socket_path(c)}"
    return [
        _driver(c),
        # Its CRDs are Established before it starts; without this it waits 30 s in vain for
        # the VolumeGroupSnapshot CRDs, which devenv does not install.
        _sidecar(c, "snapshot-controller", "--retry-crd-interval-max=2s"),
        _sidecar(c, "csi-snapshotter", sock, "--timeout=60s"),
        _sidecar(c, "csi-provisioner", sock, "--timeout=60s", "--extra-create-metadata"),
    ]


# --- objects in the cluster ----------------------------------------------------------------


def snapshot_crd_files() -> list[Path]:
    """The VolumeSnapshot CRDs of external-snapshotter's client module (from the module cache)."""
    module = f"{gobuild.SNAPSHOT_CLIENT_MODULE}@{config.CSI_SNAPSHOTTER_VERSION}"
    out = gobuild._go(["mod", "download", "-json", module], cwd=config.CACHE_DIR)
    crd_dir = Path(json.loads(out)["Dir"]) / "config" / "crd"
    return [crd_dir / f"snapshot.storage.k8s.io_{name}.yaml" for name in SNAPSHOT_CRDS]


def objects() -> list[dict]:
    """The CSIDriver, StorageClass and VolumeSnapshotClass of the driver."""
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": {"name": DRIVER_NAME},
            "spec": {
                "attachRequired": False,
                "podInfoOnMount": False,
                "fsGroupPolicy": "File",
                "volumeLifecycleModes": ["Persistent"],
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": DRIVER_NAME,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": SNAPSHOT_CLASS, "labels": {SNAPSHOT_CLASS_LABEL: "true"}},
            "driver": DRIVER_NAME,
            "deletionPolicy": "Delete",
        },
    ]


def kubectl(
    c: Cluster, *args: str, stdin: str | None = None, timeout: float = 120, retry: float = 60
) -> str:
    """Run kubectl on cluster ``c``; while its apiserver refuses connections (another session
    may be restarting it, as the etcd restore drill does) retry for up to ``retry`` seconds."""
    from .clusters import binary as kube_binary

    deadline = time.monotonic() + retry
    while True:
        proc = subprocess.run(
            [kube_binary("kubectl"), f"--kubeconfig={c.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode == 0:
            return proc.stdout
        unreachable = "connection refused" in proc.stderr or "ServiceUnavailable" in proc.stderr
        if not unreachable or time.monotonic() > deadline:
            raise procs.ServiceError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        time.sleep(1)


def apply_objects(c: Cluster) -> None:
    crds = "\n---\n".join(p.read_text() for p in snapshot_crd_files())
    kubectl(c, "apply", "-f", "-", stdin=crds)
    names = [f"crd/{n}.snapshot.storage.k8s.io" for n in SNAPSHOT_CRDS]
    kubectl(c, "wait", "--for=condition=Established", "--timeout=60s", *names)
    kubectl(c, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects(), sort_keys=False))


# --- up / down -----------------------------------------------------------------------------


def build(log=print) -> dict[str, float]:
    """Build the driver and the sidecars unless cached; seconds spent per component."""
    return {comp.name: gobuild.build(comp, log=log) for comp in gobuild.CSI_COMPONENTS}


def up(name: str, log=print) -> dict[str, str]:
    """Start cluster ``name``'s driver and sidecars and create its CSI objects; wait until a
    running node's kubelet has registered the driver. {service name: state}."""
    c = CLUSTERS[name]
    for path in (socket_path(c), registration_socket(c)):
        if len(str(path)) > SOCKET_PATH_MAX:
            raise procs.ServiceError(
                f"socket path {path} is longer than {SOCKET_PATH_MAX} bytes; "
                "use a shorter PALETTE_DEVENV_DIR"
            )
    build(log)
    data_dir(c).mkdir(parents=True, exist_ok=True)
    # The CRDs first: the snapshot controller and csi-snapshotter wait for them.
    apply_objects(c)
    driver, *others = services(c)
    for svc in (driver, *others):
        if procs.recorded_argv(svc.name) not in (None, svc.argv):
            log(f"  {svc.name} runs with other flags: restarting it")
            procs.stop(svc.name)
        elif _binary_replaced(svc.name):
            log(f"  {svc.name} runs a binary that was rebuilt since: restarting it")
            procs.stop(svc.name)
    results = {driver.name: procs.ensure(driver, log=log)}
    if results[driver.name] == "started":
        # The sidecars exit when they lose the driver's socket: restart them with it now
        # rather than let them die a moment after they were found running.
        for svc in others:
            if "--csi-address" in " ".join(svc.argv):
                procs.stop(svc.name)
    results.update({svc.name: procs.ensure(svc, log=log) for svc in others})
    _wait_registered(c, log)
    return results


def _binary_replaced(name: str) -> bool:
    """Does our running process ``name`` run an executable that a rebuild has replaced?"""
    pid = procs.running_pid(name)
    if pid is None:
        return False
    try:
        return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    except OSError:
        return False


def _wait_registered(c: Cluster, log, timeout: float = 60) -> None:
    """If the cluster has its node, wait until the kubelet lists the driver in its CSINode."""
    node = node_name(c)
    try:
        kubectl(c, "get", "node", node, "-o", "name")
    except procs.ServiceError:
        log(f"  no node {node} in cluster {c.name}: the CSI driver serves the controller only")
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            doc = json.loads(kubectl(c, "get", "csinode", node, "-o", "json"))
            if any(d.get("name") == DRIVER_NAME for d in doc["spec"].get("drivers") or []):
                return
        except procs.ServiceError:
            pass
        if time.monotonic() > deadline:
            raise procs.ServiceError(
                f"the kubelet of {node} did not register {DRIVER_NAME} within {timeout:.0f}s; "
                f"see {config.LOG_DIR}/{service_name(c, 'csi-hostpath')}.log and the kubelet's log"
            )
        time.sleep(0.5)


def down(name: str) -> list[str]:
    """Stop cluster ``name``'s CSI processes and remove their sockets. The driver's bind
    mounts live in the kubelet's pod directories: the kubelet unpublishes them as pods go, and
    :func:`devenv.nodeclean.clean` unmounts whatever is left under the node's directory."""
    c = CLUSTERS[name]
    stopped = [
        service_name(c, piece) for piece in reversed(PIECES) if procs.stop(service_name(c, piece))
    ]
    for path in (socket_path(c), registration_socket(c)):
        path.unlink(missing_ok=True)
    return stopped


def env() -> dict[str, str]:
    return {
        "STORAGE_CLASS_CSI": STORAGE_CLASS,
        "VOLUME_SNAPSHOT_CLASS": SNAPSHOT_CLASS,
        "CSI_DRIVER_NAME": DRIVER_NAME,
    }
