"""Velero itself against a local cluster, for the compatibility tests and the benchmark.

``start("b", bucket, prefix)`` installs what a Velero server needs into a namespace of its
own (unique unless given, so that parallel test runs never share one) and starts
``velero server`` as a local process with the cluster's admin kubeconfig:

- the CRDs of ``velero install --crds-only --dry-run`` (server-side applied: shared by every
  server of the cluster, and idempotent);
- from ``velero install --dry-run``: the namespace, its service account and the ``velero``
  Deployment at 0 replicas (Velero's restore of pods reads that Deployment; nothing runs it);
- a credentials Secret and the default BackupStorageLocation on devenv's MinIO
  (``region=minio``, ``s3ForcePathStyle``, ``s3Url``) at the bucket and prefix asked for.

The server listens on loopback only: its metrics on a port picked here, the profiler off,
and controller-runtime's own metrics server on a port the kernel picks (linked into the
binary, devenv/gobuild.py: ``velero server`` has no flag for it). Its credential files go
under ``.devenv/velero/<namespace>/``. Each server is a tracked service
(``velero-<cluster>-<namespace>``), so ``python -m devenv down`` stops it too.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import config, gobuild, load_env, procs

PLUGIN_IMAGE = f"velero/velero-plugin-for-aws:{config.VELERO_AWS_PLUGIN_VERSION}"
VELERO_IMAGE = f"velero/velero:{config.VELERO_VERSION}"
SECRET = "cloud-credentials"  # noqa: S105 - the Secret's name
LOCATION = "default"
SERVICE_PREFIX = "velero-"
# Objects of ``velero install --dry-run`` that a local server uses (RBAC is not needed: the
# server runs with the cluster's admin kubeconfig; the Secret and location are made here).
INSTALL_KINDS = ("Namespace", "ServiceAccount", "Deployment")
CSI_FEATURES = ("EnableCSI",)  # what a server needs to take and restore CSI snapshots


class VeleroError(RuntimeError):
    pass


def binaries_available() -> bool:
    return all(gobuild.is_built(c) for c in gobuild.VELERO_COMPONENTS)


def velero_bin() -> str:
    return str(gobuild.VELERO.paths()["velero"])


def plugin_dir() -> str:
    return str(gobuild.VELERO_AWS_PLUGIN.bin_dir)


def env() -> dict[str, str]:
    """The keys ``up`` writes to ``.devenv/env`` once both programs are built."""
    return {
        "VELERO_BIN": velero_bin(),
        "VELERO_PLUGIN_DIR": plugin_dir(),
        "VELERO_VERSION": config.VELERO_VERSION,
    }


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((config.HOST, 0))
        return s.getsockname()[1]


def run(argv: list[str], timeout: float = 120, stdin: str | None = None) -> str:
    """Run a program; its stdout, or VeleroError with its stderr."""
    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise VeleroError(f"{' '.join(argv[:4])} ... did not finish in {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise VeleroError(
            f"{' '.join(argv[:6])} ... failed ({proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-3000:]}"
        )
    return proc.stdout


@dataclass
class Server:
    cluster: str  # "a" or "b"
    namespace: str
    kubeconfig: str
    kubectl: str
    bucket: str
    prefix: str
    metrics_port: int

    @property
    def name(self) -> str:
        return f"{SERVICE_PREFIX}{self.cluster}-{self.namespace}"

    @property
    def state_dir(self) -> Path:
        return config.STATE_DIR / "velero" / self.namespace

    @property
    def log_path(self) -> Path:
        return config.LOG_DIR / f"{self.name}.log"

    def cli(self, *args: str, timeout: float = 120) -> str:
        """``velero --kubeconfig K --namespace N ARGS...``; its stdout."""
        base = [velero_bin(), f"--kubeconfig={self.kubeconfig}", f"--namespace={self.namespace}"]
        return run([*base, *args], timeout=timeout)

    def kubectl_run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        return run([self.kubectl, f"--kubeconfig={self.kubeconfig}", *args], timeout, stdin)

    def get(self, kind: str, name: str) -> dict | None:
        """A Velero object of this server's namespace (``backup``, ``restore``, ...), or None."""
        out = self.kubectl_run(
            "get", f"{kind}s.velero.io", name, "-n", self.namespace, "-o", "json",
            "--ignore-not-found",
        )  # fmt: skip
        return json.loads(out) if out.strip() else None

    def wait_phase(self, kind: str, name: str, timeout: float = 300) -> dict:
        """The object once its phase is final (Velero's terminal phases); VeleroError after
        ``timeout`` seconds, with the last phase seen."""
        final = {"Completed", "PartiallyFailed", "Failed", "FailedValidation"}
        deadline = time.monotonic() + timeout
        obj = None
        while time.monotonic() < deadline:
            obj = self.get(kind, name)
            if obj and (obj.get("status") or {}).get("phase") in final:
                return obj
            self.check_running()
            time.sleep(1)
        phase = ((obj or {}).get("status") or {}).get("phase", "absent")
        raise VeleroError(f"{kind} {name} still {phase} after {timeout:.0f}s")

    def pid(self) -> int | None:
        return procs.running_pid(self.name)

    def check_running(self) -> None:
        if self.pid() is None:
            raise VeleroError(
                f"velero server {self.name} is not running; its log:\n"
                + procs.log_tail(self.log_path, 30)
            )

    def peak_rss_mib(self) -> dict[str, float]:
        """Peak resident memory (VmHWM, MiB) of the server and of each plugin process it
        runs now, by role: ``velero server``, ``velero run-plugins``, ``velero-plugin-for-aws``."""
        found: dict[str, float] = {}
        pid = self.pid()
        if pid is None:
            return found
        for member in {pid, *procs.group_pids(pid)}:
            with contextlib.suppress(OSError, ValueError, StopIteration):
                status = Path(f"/proc/{member}/status").read_text()
                argv = Path(f"/proc/{member}/cmdline").read_bytes().decode().split("\0")
                role = Path(argv[0]).name
                if role == "velero" and len(argv) > 1:
                    role = f"velero {argv[1]}"
                hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
                found[role] = max(found.get(role, 0.0), int(hwm.split()[1]) / 1024)
        return found

    def wait_location_available(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        phase = message = ""
        while time.monotonic() < deadline:
            bsl = self.get("backupstoragelocation", LOCATION) or {}
            status = bsl.get("status") or {}
            phase, message = status.get("phase", ""), status.get("message", "")
            if phase == "Available":
                return
            self.check_running()
            time.sleep(1)
        raise VeleroError(
            f"backup location of {self.name} is {phase or 'not validated'} after "
            f"{timeout:.0f}s: {message}\n{procs.log_tail(self.log_path, 30)}"
        )

    def stop(self, delete_namespace: bool = True) -> None:
        """Stop the server; then delete its namespace (finalizers of Velero's objects are
        taken off first: nothing would remove them once the server is gone)."""
        procs.stop(self.name)
        if delete_namespace:
            with contextlib.suppress(VeleroError):
                self._release_finalizers()
                self.kubectl_run(
                    "delete", "namespace", self.namespace, "--ignore-not-found", "--wait=false"
                )
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _release_finalizers(self) -> None:
        for kind in ("restores.velero.io", "backups.velero.io", "deletebackuprequests.velero.io"):
            out = self.kubectl_run("get", kind, "-n", self.namespace, "-o", "name")
            for obj in out.split():
                self.kubectl_run(
                    "patch", obj, "-n", self.namespace, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}',
                )  # fmt: skip


def _install_objects(velero: str, kubeconfig: str, namespace: str) -> list[dict]:
    out = run(
        [
            velero, f"--kubeconfig={kubeconfig}", "install", "--dry-run", "-o", "json", f"--namespace={namespace}",
            "--no-secret", "--no-default-backup-location", "--use-volume-snapshots=false",
            f"--plugins={PLUGIN_IMAGE}", f"--image={VELERO_IMAGE}",
        ]
    )  # fmt: skip
    items = json.loads(out).get("items") or []
    chosen = [o for o in items if o.get("kind") in INSTALL_KINDS]
    for obj in chosen:
        if obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = 0
    if {o["kind"] for o in chosen} != set(INSTALL_KINDS):
        raise VeleroError(f"velero install --dry-run gave no {INSTALL_KINDS}: {out[:500]}")
    return chosen


def _location_objects(namespace: str, bucket: str, prefix: str, devenv_env: dict) -> list[dict]:
    credentials = (
        "[default]\n"
        f"aws_access_key_id={devenv_env['MINIO_ACCESS_KEY']}\n"
        f"aws_secret_access_key={devenv_env['MINIO_SECRET_KEY']}\n"
    )
    storage = {"bucket": bucket, **({"prefix": prefix} if prefix else {})}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": namespace},
            "type": "Opaque",
            "stringData": {"cloud": credentials},
        },
        {
            "apiVersion": "velero.io/v1",
            "kind": "BackupStorageLocation",
            "metadata": {"name": LOCATION, "namespace": namespace},
            "spec": {
                "provider": "aws",
                "default": True,
                "objectStorage": storage,
                "credential": {"name": SECRET, "key": "cloud"},
                "config": {
                    "region": "minio",
                    "s3ForcePathStyle": "true",
                    "s3Url": devenv_env["MINIO_ENDPOINT"],
                },
            },
        },
    ]


def server_argv(server: Server, sync_period: str, features: tuple[str, ...] = ()) -> list[str]:
    """``velero server``'s command line. ``features``: Velero's feature flags; 1.18 still
    skips its built-in CSI actions (``velero.io/csi-*``) and takes no CSI snapshot without
    ``EnableCSI`` (``pkg/util/csi/util.go``, ``ShouldSkipAction``)."""
    return [
        velero_bin(),
        "server",
        f"--kubeconfig={server.kubeconfig}",
        f"--namespace={server.namespace}",
        f"--plugin-dir={plugin_dir()}",
        f"--metrics-address={config.HOST}:{server.metrics_port}",
        "--profiler-address=",
        f"--backup-sync-period={sync_period}",
        "--store-validation-frequency=10s",
        "--log-level=info",
        *([f"--features={','.join(features)}"] if features else []),
    ]


def start(
    cluster: str,
    bucket: str,
    prefix: str = "",
    namespace: str | None = None,
    devenv_env: dict | None = None,
    sync_period: str = "5s",
    timeout: float = 120,
    features: tuple[str, ...] = (),
) -> Server:
    """Install and start a Velero server on local cluster ``cluster`` ("a" or "b") whose
    default location is ``bucket``/``prefix`` on MinIO; return it once that location is
    Available. ``features``: its feature flags (``CSI_FEATURES`` for CSI snapshots). The
    caller stops it (:meth:`Server.stop`)."""
    devenv_env = devenv_env if devenv_env is not None else load_env()
    if not binaries_available():
        raise VeleroError(
            "Velero is not built: run `python -m devenv build velero velero-plugin-for-aws`"
        )
    kubeconfig = devenv_env.get(f"CLUSTER_{cluster.upper()}_KUBECONFIG")
    if not kubeconfig or not devenv_env.get("MINIO_ENDPOINT"):
        raise VeleroError(f"cluster {cluster} or MinIO is not up (see `python -m devenv up`)")
    namespace = namespace or f"velero-{uuid.uuid4().hex[:8]}"
    server = Server(
        cluster, namespace, kubeconfig, devenv_env["KUBECTL"], bucket, prefix, free_port()
    )
    crds = run([velero_bin(), "install", "--crds-only", "--dry-run", "-o", "yaml"])
    server.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=crds)
    objects = _install_objects(velero_bin(), kubeconfig, namespace)
    objects += _location_objects(namespace, bucket, prefix, devenv_env)
    server.kubectl_run(
        "apply", "--server-side", "--force-conflicts", "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )  # fmt: skip
    tmp = server.state_dir / "tmp"  # Velero writes the location's credentials file under it
    tmp.mkdir(parents=True, exist_ok=True)
    svc = procs.Service(
        name=server.name,
        argv=server_argv(server, sync_period, features),
        port=server.metrics_port,
        ready=lambda: procs.http_ok(f"http://{config.HOST}:{server.metrics_port}/metrics"),
        env={"TMPDIR": str(tmp)},
        start_timeout=timeout,
    )
    try:
        procs.ensure(svc, log=lambda line: None)
        server.wait_location_available(timeout)
    except (procs.ServiceError, VeleroError):
        server.stop()
        raise
    return server


def stop_all(log=print) -> list[str]:
    """Stop every Velero server devenv started (their namespaces stay); their names."""
    stopped = []
    for name in procs.tracked_names():
        if name.startswith(SERVICE_PREFIX) and procs.stop(name):
            log(f"stopped {name}")
            stopped.append(name)
            namespace = name[len(SERVICE_PREFIX) :].split("-", 1)[-1]  # velero-<cluster>-<ns>
            shutil.rmtree(config.STATE_DIR / "velero" / namespace, ignore_errors=True)
    return stopped
