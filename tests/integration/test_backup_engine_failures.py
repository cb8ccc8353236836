"""How the backup engine fails: a refused resource type, the API server or the store
cut in the middle of a backup, a cluster that never answers.

The cuts are real connection failures: a small TCP proxy stands between the engine
and cluster A's API server (or MinIO), and the test cuts it at the moment the
engine starts streaming the archive.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
import threading
from pathlib import Path

import pytest
import yaml

from backups.engine.backup.run import run_backup
from backups.engine.storage.layout import Layout
from backups.engine_inputs import backup_request
from backups.models import Status
from devenv.seed import create
from locations.providers import get_provider
from tests import factories
from tests.integration.test_backup_engine import Recorder, backup_with, kubeconfig_a, world  # noqa: F401
from workspaces.models import Cluster

pytestmark = pytest.mark.integration

STREAMING = "Backing up resources"


class Proxy:
    """Forwards TCP connections to ``target``; ``cut()`` resets every connection and
    turns new ones away until ``restore()``."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    @staticmethod
    def _reset(sock):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    def cut(self):
        self.open = False
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            self._reset(sock)

    def restore(self):
        self.open = True

    def close(self):
        self.cut()
        self.listener.close()


class CutWhenStreaming(Recorder):
    """Calls ``action`` once, when the engine starts streaming the archive."""

    def __init__(self, action):
        super().__init__()
        self.action = action
        self.done = False

    def on_progress(self, done, total, phase):
        super().on_progress(done, total, phase)
        if phase == STREAMING and not self.done:
            self.done = True
            self.action()


def kubeconfig_via(devenv, server: str | None = None, token: str | None = None) -> str:
    config = yaml.safe_load(kubeconfig_a(devenv))
    if server:
        config["clusters"][0]["cluster"]["server"] = server
    if token:
        for user in config["users"]:
            user["user"] = {"token": token}
    return yaml.safe_dump(config)


def test_a_refused_resource_type_makes_the_backup_partially_failed(
    db, devenv, kube_a, fresh_namespace, tmp_path
):
    ns = fresh_namespace
    name = f"{ns}-lister"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "lister", "namespace": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "visible", "namespace": ns}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hidden", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": [{"apiGroups": [""], "resources": ["namespaces", "configmaps"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": ns}]},
    ]  # fmt: skip
    for obj in objects:
        create(kube_a, obj)
    try:
        method, url, headers, body, _ = kube_a.param_serialize(
            "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/lister/token",
            header_params={"Content-Type": "application/json"}, auth_settings=["BearerToken"],
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}},
        )  # fmt: skip
        token = json.loads(kube_a.call_api(method, url, headers, body).read())["status"]["token"]
        ws = factories.workspace()
        cluster = Cluster.objects.create(
            workspace=ws, name="limited", kubeconfig=kubeconfig_via(devenv, token=token)
        )
        location = factories.location(ws, path=str(tmp_path))
        backup, provider, outcome, _ = backup_with(
            cluster, location, include_namespaces=[ns], include_resources=["configmaps", "secrets"]
        )
    finally:
        for path in (f"{rbac}/clusterrolebindings/{name}", f"{rbac}/clusterroles/{name}"):
            with contextlib.suppress(Exception):
                kube_a.call_api(
                    *kube_a.param_serialize("DELETE", path, auth_settings=["BearerToken"])[:3]
                ).read()
    assert outcome.phase == "PartiallyFailed" and outcome.error == ""
    # The config maps: "visible" and the kube-root-ca.crt that the controller manager's
    # root-ca-cert-publisher puts into every namespace.
    assert outcome.errors == 1 and outcome.items == 2
    layout = Layout(location.prefix)
    results = json.loads(
        __import__("gzip").decompress(
            provider.get_bytes(layout.backup_file(backup.name, "results"))
        )
    )
    (message,) = results["errors"]["namespaces"][ns]
    assert message.startswith(f"Listing secrets in namespace {ns} failed: 403 Forbidden")
    assert 'cannot list resource "secrets"' in message
    doc = json.loads(provider.get_bytes(layout.backup_file(backup.name, "metadata")))
    assert doc["status"]["phase"] == "PartiallyFailed" and doc["status"]["errors"] == 1


def test_the_api_server_cut_mid_backup_fails_it_with_a_clear_reason(db, devenv, tmp_path):
    server = devenv["CLUSTER_A_API_SERVER"]
    host, port = server.rsplit("//", 1)[1].split(":")
    proxy = Proxy(host, int(port))
    try:
        ws = factories.workspace()
        cluster = Cluster.objects.create(
            workspace=ws, name="proxied",
            kubeconfig=kubeconfig_via(devenv, server=f"https://127.0.0.1:{proxy.port}"),
        )  # fmt: skip
        location = factories.location(ws, path=str(tmp_path))
        recorder = CutWhenStreaming(proxy.cut)
        backup, provider, outcome, _ = backup_with(cluster, location, recorder=recorder)
    finally:
        proxy.close()
    assert recorder.done
    assert outcome.phase == "Failed"
    assert f"127.0.0.1:{proxy.port}" in outcome.error
    assert "broke off" in outcome.error or "Could not connect" in outcome.error, outcome.error
    assert outcome.size_bytes == 0 and outcome.sha256 == ""
    layout = Layout(location.prefix)
    assert not provider.exists(layout.backup_file(backup.name, "archive"))
    assert not list(Path(tmp_path).rglob("*.palette-partial"))
    doc = json.loads(provider.get_bytes(layout.backup_file(backup.name, "metadata")))
    assert doc["status"]["phase"] == "Failed" and doc["status"]["failureReason"] == outcome.error


def test_the_store_cut_mid_upload_leaves_no_archive_and_records_failed(
    db,
    devenv,
    minio_bucket,
    minio_s3,
    world,  # noqa: F811
):
    cluster, _ = world
    host, port = devenv["MINIO_ENDPOINT"].rsplit("//", 1)[1].split(":")
    proxy = Proxy(host, int(port))
    location = factories.location(
        cluster.workspace, provider="minio", bucket=minio_bucket, prefix="velero",
        endpoint_url=f"http://127.0.0.1:{proxy.port}", force_path_style=True,
        credentials={"access_key": devenv["MINIO_ACCESS_KEY"], "secret_key": devenv["MINIO_SECRET_KEY"]},
    )  # fmt: skip

    class Recover(CutWhenStreaming):
        def on_log(self, line):
            super().on_log(line)
            if "Uploading the archive failed" in line:
                proxy.restore()  # the store comes back: the engine records the failure

    recorder = Recover(proxy.cut)
    try:
        backup, provider, outcome, _ = backup_with(
            cluster, location, recorder=recorder, include_namespaces=["shop", "billing"]
        )
    finally:
        proxy.close()
    assert outcome.phase == "Failed"
    assert outcome.error.startswith("Uploading the archive failed:"), outcome.error
    assert (
        "127.0.0.1" in outcome.error or "MinIO" in outcome.error or "reach" in outcome.error.lower()
    )
    keys = {o["Key"] for o in minio_s3.list_objects_v2(Bucket=minio_bucket).get("Contents", [])}
    layout = Layout("velero")
    assert layout.backup_file(backup.name, "archive") not in keys
    uploads = minio_s3.list_multipart_uploads(Bucket=minio_bucket).get("Uploads", [])
    assert not [u for u in uploads if u["Key"].endswith(".tar.gz")]
    doc = json.loads(
        minio_s3.get_object(Bucket=minio_bucket, Key=layout.backup_file(backup.name, "metadata"))[
            "Body"
        ].read()
    )
    assert doc["status"]["phase"] == "Failed" and doc["status"]["failureReason"] == outcome.error


def test_the_directory_removed_mid_backup_fails_it(db, devenv, world, tmp_path):  # noqa: F811
    cluster, _ = world
    root = tmp_path / "doomed"
    root.mkdir()
    location = factories.location(cluster.workspace, path=str(root))
    recorder = CutWhenStreaming(lambda: shutil.rmtree(root))
    backup, provider, outcome, _ = backup_with(
        cluster, location, recorder=recorder, include_namespaces=["shop"]
    )
    assert recorder.done and outcome.phase == "Failed"
    assert outcome.error.startswith("Uploading the archive failed:")
    assert str(root) in outcome.error and "does not exist" in outcome.error
    assert not root.exists()  # nothing recreated, nothing partial left


def test_an_unreachable_cluster_fails_at_once_and_says_so(db, tmp_path):
    ws = factories.workspace()
    cluster = factories.cluster(ws)  # its server refuses connections
    location = factories.location(ws, path=str(tmp_path))
    backup = factories.backup(cluster, location, status=Status.RUNNING)
    provider = get_provider(location)
    outcome = run_backup(
        backup_request(backup, provider), progress=lambda *a: None, log=lambda line: None
    )
    assert outcome.phase == "Failed" and outcome.items == 0
    assert "connection refused" in outcome.error and "127.0.0.1:9" in outcome.error
    layout = Layout(location.prefix)
    doc = json.loads(provider.get_bytes(layout.backup_file(backup.name, "metadata")))
    assert doc["status"]["phase"] == "Failed" and doc["status"]["failureReason"] == outcome.error
    assert not provider.exists(layout.backup_file(backup.name, "archive"))


def test_an_invalid_selector_fails_before_touching_anything(db, tmp_path):
    ws = factories.workspace()
    location = factories.location(ws, path=str(tmp_path))
    backup = factories.backup(
        factories.cluster(ws), location, status=Status.RUNNING, label_selector="a in (b"
    )
    outcome = run_backup(backup_request(backup), progress=lambda *a: None, log=print)
    assert outcome.phase == "Failed" and "label selector 'a in (b' is not valid" in outcome.error
    assert not list(Path(tmp_path).iterdir())


class StopWhenStreaming(Recorder):
    """Says stop at the first safe point after the archive started streaming."""

    def __init__(self):
        super().__init__()
        self.streaming = False
        self.asked_after = 0

    def on_progress(self, done, total, phase):
        super().on_progress(done, total, phase)
        self.streaming = self.streaming or phase == STREAMING

    def should_stop(self) -> bool:
        if self.streaming:
            self.asked_after += 1
        return self.streaming


def test_a_cancelled_backup_removes_everything_it_wrote(world, tmp_path):  # noqa: F811 (the fixture)
    cluster, location = world
    recorder = StopWhenStreaming()
    backup, provider, outcome, _ = backup_with(cluster, location, recorder=recorder)
    assert outcome.phase == "Cancelled" and outcome.error == "", (outcome, recorder.lines)
    assert recorder.asked_after == 1  # stopped at the first safe point once streaming
    assert outcome.size_bytes == 0 and outcome.sha256 == ""
    layout = Layout(location.prefix)
    # velero-backup.json (InProgress) and the log were written before: both are gone too.
    assert list(provider.list(layout.backup_dir(backup.name))) == []
    assert recorder.progress[-1][2] == "Cancelled"
    assert any("Backup cancelled" in line for line in recorder.lines)
