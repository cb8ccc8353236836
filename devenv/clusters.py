"""The two local Kubernetes clusters, A and B: etcd + kube-apiserver + kube-controller-manager.

Cluster A's etcd serves TLS and requires client certificates (as a production etcd does);
cluster B's serves plain http. Each cluster also gets a worker node (kubelet, containerd,
kube-scheduler: :mod:`devenv.nodes`); the apiserver reaches its kubelet with a client
certificate, and the controller manager runs the default controller set.

For the console's own etcd restore (``backups/engine/etcd/restore.py``) the pieces can be
stopped and started one by one (:func:`stop_component`, :func:`start_component`, also as
``python -m devenv component``); :func:`write_local_targets` describes both clusters to it.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import certs, config, gobuild, procs

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
# The default controller set (nodelifecycle untaints the nodes, podgc, pvc-protection,
# attachdetach, statefulset, job, endpointslice, ...), as in a real cluster.
CONTROLLERS = ("*",)


@dataclass(frozen=True)
class Cluster:
    name: str  # "a" or "b"
    etcd_tls: bool

    @property
    def dir(self) -> Path:
        return config.STATE_DIR / "clusters" / self.name

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def etcd_data_dir(self) -> Path:
        return self.dir / "etcd"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def port(self, what: str) -> int:
        return config.PORTS[f"{what}-{self.name}"]

    @property
    def etcd_endpoint(self) -> str:
        scheme = "https" if self.etcd_tls else "http"
        return f"{scheme}://{config.HOST}:{self.port('etcd')}"

    @property
    def etcd_peer_url(self) -> str:
        return f"http://{config.HOST}:{self.port('etcd-peer')}"

    @property
    def initial_cluster(self) -> str:
        return f"default={self.etcd_peer_url}"

    @property
    def api_server(self) -> str:
        return f"https://{config.HOST}:{self.port('apiserver')}"

    def service_name(self, component: str) -> str:
        return f"{component}-{self.name}"


CLUSTERS = {"a": Cluster("a", etcd_tls=True), "b": Cluster("b", etcd_tls=False)}


def binary(name: str) -> str:
    comp = gobuild.ETCD if name in gobuild.ETCD_BINARIES else gobuild.KUBERNETES
    return str(comp.paths()[name])


def binaries_available() -> bool:
    return gobuild.is_built(gobuild.ETCD) and gobuild.is_built(gobuild.KUBERNETES)


def _ssl_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def etcd_client_files(c: Cluster) -> dict[str, Path]:
    return {
        "ca": c.pki / "etcd-ca.crt",
        "cert": c.pki / "etcd-client.crt",
        "key": c.pki / "etcd-client.key",
    }


def _etcd_service(c: Cluster) -> procs.Service:
    port = c.port("etcd")
    argv = [
        binary("etcd"),
        "--name=default",
        f"--data-dir={c.etcd_data_dir}",
        f"--listen-client-urls={c.etcd_endpoint}",
        f"--advertise-client-urls={c.etcd_endpoint}",
        f"--listen-peer-urls={c.etcd_peer_url}",
        f"--initial-advertise-peer-urls={c.etcd_peer_url}",
        f"--initial-cluster={c.initial_cluster}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    if c.etcd_tls:
        argv += [
            f"--cert-file={c.pki / 'etcd-server.crt'}",
            f"--key-file={c.pki / 'etcd-server.key'}",
            f"--trusted-ca-file={c.pki / 'etcd-ca.crt'}",
            "--client-cert-auth",
        ]
        files = etcd_client_files(c)
        ctx = None

        def ready() -> bool:
            nonlocal ctx
            ctx = ctx or _ssl_context(files["ca"], files["cert"], files["key"])
            return procs.http_ok(f"{c.etcd_endpoint}/health", ctx)
    else:

        def ready() -> bool:
            return procs.http_ok(f"{c.etcd_endpoint}/health")

    return procs.Service(c.service_name("etcd"), argv, port, ready)


def _apiserver_service(c: Cluster) -> procs.Service:
    pki = c.pki
    argv = [
        binary("kube-apiserver"),
        f"--etcd-servers={c.etcd_endpoint}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={c.port('apiserver')}",
        f"--cert-dir={c.dir / 'apiserver-certs'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        # Node: the kubelets' own credentials (CN=system:node:<name>, O=system:nodes).
        "--authorization-mode=Node,RBAC",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        # The node's name does not resolve: dial its InternalIP (the machine's address).
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer={c.api_server}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/16",
        "--allow-privileged=true",
        "--disable-admission-plugins=ServiceAccount",
        "--v=1",
    ]
    if c.etcd_tls:
        files = etcd_client_files(c)
        argv += [
            f"--etcd-cafile={files['ca']}",
            f"--etcd-certfile={files['cert']}",
            f"--etcd-keyfile={files['key']}",
        ]
    ctx = None

    def ready() -> bool:
        nonlocal ctx
        ctx = ctx or _ssl_context(pki / "ca.crt", pki / "admin.crt", pki / "admin.key")
        return procs.http_ok(f"{c.api_server}/readyz", ctx)

    return procs.Service(c.service_name("kube-apiserver"), argv, c.port("apiserver"), ready)


def component_flags(c: Cluster, port: int, cert_dir: str) -> list[str]:
    """The flags that the controller manager and the scheduler share: the admin kubeconfig
    for everything, no leader election, a serving port on loopback."""
    kubeconfig = str(c.kubeconfig)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        # The apiserver has no request-header (front proxy) CA: do not look for one.
        "--authentication-skip-lookup",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={c.dir / cert_dir}",
    ]


def healthz_ready(port: int):
    """Readiness of a component with a self-signed serving certificate: only liveness."""
    ctx = ssl._create_unverified_context()  # noqa: S323

    def ready() -> bool:
        return procs.http_ok(f"https://{config.HOST}:{port}/healthz", ctx)

    return ready


def _controller_manager_service(c: Cluster) -> procs.Service:
    port = c.port("controller-manager")
    argv = [
        binary("kube-controller-manager"),
        *component_flags(c, port, "controller-manager-certs"),
        "--use-service-account-credentials=false",
        f"--controllers={','.join(CONTROLLERS)}",
        f"--service-account-private-key-file={c.pki / 'sa.key'}",
        f"--root-ca-file={c.pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={c.pki / 'ca.crt'}",
        f"--cluster-signing-key-file={c.pki / 'ca.key'}",
        # Deleting a namespace of thousands of objects should not crawl at client-go's 20 QPS.
        "--kube-api-qps=300",
        "--kube-api-burst=600",
        "--v=1",
    ]
    return procs.Service(c.service_name("kube-controller-manager"), argv, port, healthz_ready(port))


SERVICE_FACTORIES = {
    "etcd": _etcd_service,
    "kube-apiserver": _apiserver_service,
    "kube-controller-manager": _controller_manager_service,
}


def write_kubeconfig(c: Cluster) -> Path:
    def b64(name: str) -> str:
        return base64.b64encode((c.pki / name).read_bytes()).decode()

    ctx_name = f"palette-{c.name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": ctx_name,
                "cluster": {"server": c.api_server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": f"{ctx_name}-admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [
            {"name": ctx_name, "context": {"cluster": ctx_name, "user": f"{ctx_name}-admin"}}
        ],
        "current-context": ctx_name,
    }
    c.kubeconfig.write_text(yaml.safe_dump(doc, sort_keys=False))
    c.kubeconfig.chmod(0o600)
    return c.kubeconfig


def prepare(c: Cluster) -> None:
    c.dir.mkdir(parents=True, exist_ok=True)
    certs.make_cluster_pki(c.pki)
    write_kubeconfig(c)


def start_component(cluster: str, component: str, log=print) -> str:
    """Start one component ("etcd", "kube-apiserver", "kube-controller-manager") of a cluster
    and wait until it answers; return "started" or "running"."""
    c = CLUSTERS[cluster]
    with procs.devenv_lock():
        prepare(c)
        return procs.ensure(SERVICE_FACTORIES[component](c), log=log)


def stop_component(cluster: str, component: str) -> bool:
    """Stop one component of a cluster; True if it was running."""
    with procs.devenv_lock():
        return procs.stop(CLUSTERS[cluster].service_name(component))


def component_ready(cluster: str, component: str) -> bool:
    """Does one component of a cluster pass its readiness check now (the apiserver: /readyz)?"""
    return SERVICE_FACTORIES[component](CLUSTERS[cluster]).ready()


def start(names=("a", "b"), log=print) -> dict[str, str]:
    """Start (or keep) the clusters ``names``, each layer of all clusters at once."""
    results = {}
    for c in (CLUSTERS[n] for n in names):
        prepare(c)
    for component in COMPONENTS:
        services = [SERVICE_FACTORIES[component](CLUSTERS[n]) for n in names]
        pending = {}
        for svc in services:
            procs.adopt(svc)
            if procs.running_pid(svc.name) is not None and svc.ready():
                if procs.recorded_argv(svc.name) in (None, svc.argv):
                    results[svc.name] = "running"
                    continue
                # Started with other flags (an older devenv): restart it, one at a time.
                log(f"  {svc.name} runs with other flags: restarting it")
                procs.stop(svc.name, sig=svc.stop_signal)
                results[svc.name] = procs.ensure(svc, log=log)
                continue
            pending[svc.name] = svc
        # Spawn the pending ones together, then wait: two apiservers boot in parallel.
        started = {}
        for svc in pending.values():
            if procs.running_pid(svc.name) is None:
                owner = procs.port_owner(svc.port)
                if owner is not None:
                    raise procs.ServiceError(
                        f"port {config.HOST}:{svc.port} needed by {svc.name} is already "
                        f"taken by {owner}, which devenv did not start"
                    )
                started[svc.name] = procs.spawn(svc)
        for name, svc in pending.items():
            pid = started.get(name) or procs.running_pid(name)
            if pid is None:
                results[name] = procs.ensure(svc, log=log)
                continue
            procs.wait_ready(svc, pid, timeout=svc.start_timeout)
            results[name] = "started"
    return results


def stop(names=("a", "b")) -> list[str]:
    stopped = []
    for n in names:
        for component in reversed(COMPONENTS):
            if stop_component(n, component):
                stopped.append(CLUSTERS[n].service_name(component))
    return stopped


def env(names=("a", "b")) -> dict[str, str]:
    out = {}
    for n in names:
        c = CLUSTERS[n]
        p = f"CLUSTER_{n.upper()}_"
        out[p + "KUBECONFIG"] = str(c.kubeconfig)
        out[p + "API_SERVER"] = c.api_server
        out[p + "ETCD_ENDPOINT"] = c.etcd_endpoint
        if c.etcd_tls:
            files = etcd_client_files(c)
            out[p + "ETCD_CA"] = str(files["ca"])
            out[p + "ETCD_CERT"] = str(files["cert"])
            out[p + "ETCD_KEY"] = str(files["key"])
        out[p + "ETCD_DATA_DIR"] = str(c.etcd_data_dir)
        out[p + "ETCD_NAME"] = "default"
        out[p + "ETCD_INITIAL_CLUSTER"] = c.initial_cluster
        out[p + "ETCD_PEER_URL"] = c.etcd_peer_url
    out["KUBERNETES_VERSION"] = config.KUBERNETES_VERSION
    out["ETCD_VERSION"] = config.ETCD_VERSION
    for tool in ("etcd", "etcdctl", "etcdutl", "kubectl", "kube-apiserver"):
        out[tool.upper().replace("-", "_")] = binary(tool)
    return out


def local_targets(names=("a", "b")) -> dict:
    """The control planes the console may restore etcd for itself, in the shape of
    ``PALETTE_ETCD_LOCAL_TARGETS`` (``backups/engine/etcd/local.py``): the components are
    started and stopped with ``python -m devenv component``."""
    control = [
        "/usr/bin/env",
        f"PYTHONPATH={config.REPO_DIR}",
        f"PALETTE_DEVENV_DIR={config.STATE_DIR}",
        sys.executable,
        "-m",
        "devenv",
        "component",
    ]
    targets = []
    for n in names:
        c = CLUSTERS[n]
        targets.append(
            {
                "name": n,
                "endpoint": c.etcd_endpoint,
                "data_dir": str(c.etcd_data_dir),
                "member_name": "default",
                "initial_cluster": c.initial_cluster,
                "peer_url": c.etcd_peer_url,
                "etcdutl": binary("etcdutl"),
                "control": control,
            }
        )
    return {"targets": targets}


def write_local_targets(path: Path, names=("a", "b")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(local_targets(names), indent=2) + "\n")
    os.replace(tmp, path)
    return path
