"""A worker node's names, paths and configuration files: containerd's config (v3), the CNI
bridge network, the KubeletConfiguration, its certificates and kubeconfig.

Everything lives under ``.devenv/nodes/<cluster>/`` (see :mod:`devenv.nodes`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from . import certs, config, gobuild, images, procs
from .clusters import Cluster

# One subnet and bridge per cluster's pod network.
POD_SUBNETS = {"a": "10.244.1.0/24", "b": "10.244.2.0/24"}


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
        check=False,
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
