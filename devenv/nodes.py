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

import json
import socket
import subprocess
from pathlib import Path

import yaml

from . import certs, config, gobuild, images, procs
from .clusters import CLUSTERS, Cluster, component_flags, healthz_ready

STORAGE_CLASS_LOCAL = "local-path"
LOCAL_PATH_NAMESPACE = "local-path-storage"
LOCAL_PATH_SERVICE_ACCOUNT = "local-path-provisioner-service-account"
# One subnet and bridge per cluster's pod network.
POD_SUBNETS = {"a": "10.244.1.0/24", "b": "10.244.2.0/24"}
# Service names in the order `up` starts them (and `down` stops them in reverse).
PIECES = ("kube-scheduler", "containerd", "kubelet", "local-path-provisioner")


def node_name(c: Cluster) -> str:
    return f"palette-node-{c.name}"


def node_dir(c: Cluster) -> Path:
    return config.STATE_DIR / "nodes" / c.name


def bridge_name(c: Cluster) -> str:
    return f"palette-{c.name}0"


def cgroup_root(c: Cluster) -> str:
    return f"/palette-devenv-{c.name}"


def node_ip() -> str:
    """The machine's own interface address (the kubelet refuses loopback)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.split("\n"):
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    raise procs.ServiceError("this machine has no global IPv4 address for the node")


def binary(name: str) -> str:
    for comp in gobuild.NODE_COMPONENTS:
        if name in comp.binaries:
            return str(comp.paths()[name])
    raise KeyError(name)


def ctr(c: Cluster) -> list[str]:
    return [binary("ctr"), "--address", str(node_dir(c) / "containerd.sock")]


def _kubeconfig(c: Cluster, path: Path, cert: Path, key: Path) -> Path:
    ca = c.pki / "ca.crt"
    name = f"palette-{c.name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": c.api_server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": "node", "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "node"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def prepare(c: Cluster) -> None:
    """Write the node's certificates and configuration files (idempotent)."""
    d = node_dir(c)
    for sub in (
        "cni/net.d",
        "cni/ipam",
        "kubelet",
        "pki",
        "pod-logs",
        "volume-plugins",
        "local-path",
    ):
        (d / sub).mkdir(parents=True, exist_ok=True)
    certs.make_cluster_pki(c.pki)
    ip, name = node_ip(), node_name(c)
    pki = d / "pki"
    certs.make_leaf(
        c.pki, "kubelet-serving", "ca", name, server=True, sans=(name, ip, "127.0.0.1"), out_dir=pki
    )
    certs.make_leaf(
        c.pki,
        "kubelet-client",
        "ca",
        f"system:node:{name}",
        org="system:nodes",
        client=True,
        out_dir=pki,
    )
    _kubeconfig(c, d / "kubelet.kubeconfig", pki / "kubelet-client.crt", pki / "kubelet-client.key")
    _write_containerd_config(c)
    _write_cni_config(c, ip)
    _write_kubelet_config(c, ip)


def _write_containerd_config(c: Cluster) -> None:
    d = node_dir(c)
    cni_bin = gobuild.CNI_PLUGINS.bin_dir
    # Every registry resolves to a closed loopback port: a pull of an image that is not
    # imported fails at once instead of leaving this machine.
    hosts = d / "certs.d" / "_default"
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts.toml").write_text(
        "# No registry is reachable from here: every pull fails fast on loopback.\n"
        'server = "http://127.0.0.1:9"\n'
        '[host."http://127.0.0.1:9"]\n  capabilities = ["pull", "resolve"]\n'
    )
    cri_runtime = 'plugins."io.containerd.cri.v1.runtime"'
    text = f"""# Written by devenv (devenv/nodes.py) for the node of cluster {c.name}.
version = 3
root = "{d / "containerd"}"
state = "{d / "run"}"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{d / "containerd.sock"}"

[ttrpc]
  address = "{d / "containerd.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "opt"}"

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{d / "s"}"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri_runtime}]
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

[{cri_runtime}.containerd]
  default_runtime_name = "runc"

[{cri_runtime}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  disable_pause_image_pull = true

[{cri_runtime}.containerd.runtimes.runc.options]
  BinaryName = "{binary("runc")}"
  SystemdCgroup = false

[{cri_runtime}.cni]
  bin_dirs = ["{cni_bin}"]
  conf_dir = "{d / "cni" / "net.d"}"
  max_conf_num = 1

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{images.PAUSE_IMAGE}"

[plugins."io.containerd.cri.v1.images".registry]
  config_path = "{d / "certs.d"}"
"""
    (d / "containerd.toml").write_text(text)


def _write_cni_config(c: Cluster, ip: str) -> None:
    d = node_dir(c)
    conf = {
        "cniVersion": "1.0.0",
        "name": f"palette-{c.name}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge_name(c),
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNETS[c.name]}]],
                    # No default route: a pod reaches its own subnet and the node, no more.
                    "routes": [{"dst": f"{ip}/32"}],
                    "dataDir": str(d / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (d / "cni" / "net.d" / "10-palette.conflist").write_text(json.dumps(conf, indent=2) + "\n")


def _write_kubelet_config(c: Cluster, ip: str) -> None:
    d = node_dir(c)
    pki = d / "pki"
    kubelet_config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": ip,
        "port": c.port("kubelet"),
        "readOnlyPort": 0,
        "healthzBindAddress": config.HOST,
        "healthzPort": c.port("kubelet-healthz"),
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(c.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root(c),
        "failCgroupV1": False,
        "failSwapOn": False,
        "oomScoreAdj": 0,  # root here lacks CAP_SYS_RESOURCE: no negative scores
        "containerRuntimeEndpoint": f"unix://{d / 'containerd.sock'}",
        "podLogsDir": str(d / "pod-logs"),
        "volumePluginDir": str(d / "volume-plugins"),
        "resolvConf": "",  # no DNS server is reachable: pods get none
        "serializeImagePulls": False,
        "maxPods": 110,
        # A shared machine's disk is busy: evict and collect images only when nearly full.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
            "imagefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "shutdownGracePeriod": "0s",
    }
    (d / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config, sort_keys=False))


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
