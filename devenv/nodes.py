"""One real worker node per local cluster: containerd + runc + CNI bridge + kubelet, plus the
cluster's kube-scheduler and rancher's local-path-provisioner (see ../shared NODES.md).

Everything a node keeps lives under ``.devenv/nodes/<cluster>/``: containerd's root, state
and sockets, the kubelet's root dir, certificates and pod logs, the CNI config and IP
allocations, and the local-path volumes. Both nodes run on this machine, so each kubelet has
its own cgroup root (``/palette-devenv-<cluster>``) and each pod network its own bridge and
subnet. Pods route only to their own subnet and to the node's address: nothing else.

:func:`up` starts a cluster's node pieces and waits for the node to be Ready; :func:`down`
stops them; :mod:`devenv.nodeclean` removes what they left on the machine.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from . import config, gobuild, images, procs
from .clusters import CLUSTERS, Cluster, component_flags, healthz_ready
from .nodeconfig import (  # noqa: F401 - node_ip, bridge_name: part of this module's API
    binary,
    bridge_name,
    cgroup_root,
    ctr,
    node_dir,
    node_ip,
    node_name,
    prepare,
)

STORAGE_CLASS_LOCAL = "local-path"
LOCAL_PATH_NAMESPACE = "local-path-storage"
LOCAL_PATH_SERVICE_ACCOUNT = "local-path-provisioner-service-account"
# Service names in the order `up` starts them (and `down` stops them in reverse).
PIECES = ("kube-scheduler", "containerd", "kubelet", "local-path-provisioner")


# --- services ------------------------------------------------------------------------------


def _unix_socket_ok(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(str(path)) == 0


def service_name(c: Cluster, piece: str) -> str:
    return f"{piece}-{c.name}"


def _containerd(c: Cluster) -> procs.Service:
    d = node_dir(c)
    argv = [binary("containerd"), "--config", str(d / "containerd.toml"), "--log-level", "warn"]
    return procs.Service(
        service_name(c, "containerd"), argv, 0, lambda: _unix_socket_ok(d / "containerd.sock")
    )


def _kubelet(c: Cluster) -> procs.Service:
    d = node_dir(c)
    argv = [
        binary("kubelet"),
        f"--config={d / 'kubelet.yaml'}",
        f"--kubeconfig={d / 'kubelet.kubeconfig'}",
        f"--root-dir={d / 'kubelet'}",
        f"--cert-dir={d / 'pki'}",
        f"--hostname-override={node_name(c)}",
        f"--node-ip={node_ip()}",
        f"--node-labels=palette.io/devenv-cluster={c.name}",
        "--v=1",
    ]
    url = f"http://{config.HOST}:{c.port('kubelet-healthz')}/healthz"
    return procs.Service(
        service_name(c, "kubelet"), argv, c.port("kubelet"), lambda: procs.http_ok(url)
    )


def _scheduler(c: Cluster) -> procs.Service:
    port = c.port("kube-scheduler")
    argv = [binary("kube-scheduler"), *component_flags(c, port, "scheduler-certs"), "--v=1"]
    return procs.Service(service_name(c, "kube-scheduler"), argv, port, healthz_ready(port))


def _local_path(c: Cluster) -> procs.Service:
    argv = [
        binary("local-path-provisioner"),
        "start",
        f"--kubeconfig={c.kubeconfig}",
        f"--namespace={LOCAL_PATH_NAMESPACE}",
        f"--helper-image={images.BUSYBOX_IMAGE}",
        f"--service-account-name={LOCAL_PATH_SERVICE_ACCOUNT}",
    ]
    name = service_name(c, "local-path-provisioner")
    log_path = config.LOG_DIR / f"{name}.log"

    def ready() -> bool:
        # No health endpoint: ready once this run logged that its controller started.
        try:
            text = log_path.read_text(errors="replace")
        except OSError:
            return False
        return "Started provisioner controller" in text.rsplit("\n--- ", 1)[-1]

    return procs.Service(name, argv, 0, ready)


FACTORIES = {
    "kube-scheduler": _scheduler,
    "containerd": _containerd,
    "kubelet": _kubelet,
    "local-path-provisioner": _local_path,
}


def services(c: Cluster) -> list[procs.Service]:
    return [FACTORIES[p](c) for p in PIECES]


def binaries_available() -> bool:
    return all(gobuild.is_built(comp) for comp in gobuild.NODE_COMPONENTS)


def up(name: str, log=print) -> dict[str, str]:
    """Start cluster ``name``'s node pieces (the apiserver must be up); wait for a Ready node."""
    from . import nodeclean, nodeobjects

    c = CLUSTERS[name]
    prepare(c)
    nodeclean.remember_host_state()
    nodeclean.make_cgroup_root(cgroup_root(c))
    results = {}
    for piece in ("kube-scheduler", "containerd"):
        svc = FACTORIES[piece](c)
        results[svc.name] = procs.ensure(svc, log=log)
    if not images.BUSYBOX.exists():
        log(
            f"  {images.BUSYBOX} is missing (Debian's busybox-static): the local-path "
            "provisioner's helper pods have no shell, so its volumes cannot be created"
        )
    present = images.images_present(ctr(c))
    imported = [i.name for i in images.cluster_images() if images.import_image(ctr(c), i, present)]
    if imported:
        log(f"  imported into containerd-{c.name}: {', '.join(imported)}")
    svc = _kubelet(c)
    results[svc.name] = procs.ensure(svc, log=log)
    nodeobjects.wait_node_ready(c, node_name(c))
    nodeobjects.apply_local_path_objects(c, str(node_dir(c) / "local-path"))
    svc = _local_path(c)
    results[svc.name] = procs.ensure(svc, log=log)
    return results


def down(name: str) -> list[str]:
    """Stop cluster ``name``'s node pieces and every pod process. containerd's shims run in
    their own process groups and outlive containerd by design, so the pods' processes (in
    the node's cgroups) and the shims (started for the node's containerd socket) are ended
    here too."""
    from . import nodeclean

    c = CLUSTERS[name]
    stopped = []

    def stop(piece: str) -> None:
        if procs.stop(service_name(c, piece)):
            stopped.append(service_name(c, piece))

    stop("local-path-provisioner")
    stop("kubelet")
    nodeclean.kill_cgroup_processes(cgroup_root(c))
    stop("containerd")
    nodeclean.kill_processes_mentioning(str(node_dir(c)))
    stop("kube-scheduler")
    # No pod survived: their IP addresses are free again.
    ipam = node_dir(c) / "cni" / "ipam"
    if ipam.exists():
        shutil.rmtree(ipam, ignore_errors=True)
        ipam.mkdir()
    return stopped


def clean(log=print) -> list[str]:
    """After :func:`down` of every cluster: undo what the nodes did to the machine."""
    from . import nodeclean

    return nodeclean.clean(log=log)


def env(names=("a", "b")) -> dict[str, str]:
    out = {f"CLUSTER_{n.upper()}_NODE": node_name(CLUSTERS[n]) for n in names}
    out["STORAGE_CLASS_LOCAL"] = STORAGE_CLASS_LOCAL
    out["DEMO_APP_IMAGE"] = images.DEMO_APP_IMAGE
    out["KUBELET"] = binary("kubelet")
    out["CTR"] = binary("ctr")
    return out
