"""etcd snapshots of the real local clusters: over TLS into a directory and into MinIO,
verified with etcdutl, kept to exactly N, and every connection failure in one sentence.

These tests only call Status, MemberList and Snapshot on etcd; one test first grows cluster
A's etcd past the size of a multipart part, with ConfigMaps in a fresh namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from backups.engine.etcd.runbook import runbook
from backups.engine.etcd.snapshot import take_snapshot
from backups.engine.etcd.verify import verify_snapshot
from backups.engine.storage.base import StorageError
from backups.engine_inputs import etcd_endpoint, snapshot_request
from backups.etcd_retention import apply_retention
from backups.jobs.etcd import record_completed
from backups.models import EtcdSnapshot, Status
from devenv import certs
from devenv.seed import create
from devenv.testing import unique
from locations.providers import get_provider
from tests import factories
from tests.integration.provider_support import location as store_location
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration


# --- fixtures -------------------------------------------------------------------------------


def _read(env, key) -> str:
    return Path(env[key]).read_text()


@pytest.fixture
def workspace(db):
    return factories.workspace(unique("etcd"))


def _cluster(workspace, env, letter: str, **etcd) -> Cluster:
    path = Path(env[f"CLUSTER_{letter}_KUBECONFIG"])
    return Cluster.objects.create(
        workspace=workspace,
        name=unique(f"cluster-{letter.lower()}"),
        kubeconfig=flatten_kubeconfig(path.read_text(), path.parent),
        **etcd,
    )


@pytest.fixture
def cluster_a(workspace, devenv):
    return _cluster(
        workspace,
        devenv,
        "A",
        etcd_endpoint=devenv["CLUSTER_A_ETCD_ENDPOINT"],
        etcd_ca=_read(devenv, "CLUSTER_A_ETCD_CA"),
        etcd_cert=_read(devenv, "CLUSTER_A_ETCD_CERT"),
        etcd_key=_read(devenv, "CLUSTER_A_ETCD_KEY"),
    )


@pytest.fixture
def disk(workspace, tmp_path):
    return factories.location(workspace, unique("disk"), path=str(tmp_path), prefix="velero")


@pytest.fixture
def minio(workspace, devenv, minio_bucket):
    loc = store_location("minio", devenv, minio_bucket, prefix="velero")
    loc.name, loc.workspace = unique("minio"), workspace
    loc.save()
    return loc


def _row(cluster, location, name=None) -> EtcdSnapshot:
    return EtcdSnapshot.objects.create(
        name=name or unique(f"{cluster.name}-etcd"),
        workspace=cluster.workspace,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        status=Status.RUNNING,
    )


def _take(row, provider, request=None, **kwargs):
    calls, lines = [], []
    outcome = take_snapshot(
        request or snapshot_request(row, provider),
        progress=lambda done, total, phase: calls.append((done, phase)),
        log=lines.append,
        **kwargs,
    )
    return outcome, calls, lines


def _figures(label, outcome):
    print(
        f"\n[etcd snapshot {label}] {outcome.size_bytes / 1e6:.1f} MB in "
        f"{outcome.duration_seconds:.2f} s = {outcome.mb_per_second:.0f} MB/s"
    )


# --- snapshots ------------------------------------------------------------------------------


def test_a_snapshot_over_tls_into_a_directory_is_intact(cluster_a, disk, tmp_path, devenv):
    row = _row(cluster_a, disk)
    outcome, calls, lines = _take(row, get_provider(disk))
    assert outcome.ok, outcome.error
    _figures("A -> directory", outcome)
    assert outcome.key == f"velero-etcd/{cluster_a.name}/{row.name}.db"
    stored = (tmp_path / outcome.key).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == outcome.sha256
    assert len(stored) == outcome.size_bytes == outcome.db_size + 32  # + etcd's checksum
    assert outcome.etcd_version == devenv["ETCD_VERSION"].lstrip("v")
    assert outcome.member == devenv["CLUSTER_A_ETCD_NAME"] and outcome.revision > 1
    assert not (tmp_path / "velero").exists()  # beside Velero's prefix, never inside

    check = verify_snapshot(get_provider(disk), outcome.key, outcome.sha256, devenv["ETCDUTL"])
    assert check.ok, check.error
    assert check.sha256_matches and check.embedded_checksum_ok is True
    assert check.revision >= outcome.revision and check.total_keys > 100
    assert check.total_size == outcome.db_size

    phases = [p for _, p in calls]
    assert phases[0] == "Connecting" and phases[-1] == "Completed" and "Committing" in phases
    done = [b for b, _ in calls]
    assert done == sorted(done) and done[-1] == outcome.size_bytes
    assert any("member default" in line for line in lines)
    assert not any("PRIVATE KEY" in line for line in lines)


def test_a_snapshot_streams_into_minio(cluster_a, minio, minio_s3, minio_bucket, devenv):
    row = _row(cluster_a, minio)
    outcome, _, _ = _take(row, get_provider(minio))
    assert outcome.ok, outcome.error
    _figures("A -> MinIO", outcome)
    body = minio_s3.get_object(Bucket=minio_bucket, Key=outcome.key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == outcome.sha256 and len(body) == outcome.size_bytes
    check = verify_snapshot(get_provider(minio), outcome.key, outcome.sha256, devenv["ETCDUTL"])
    assert check.ok, check.error


def test_a_plain_http_etcd_needs_no_certificates(workspace, disk, devenv):
    cluster_b = _cluster(workspace, devenv, "B", etcd_endpoint=devenv["CLUSTER_B_ETCD_ENDPOINT"])
    outcome, _, _ = _take(_row(cluster_b, disk), get_provider(disk))
    assert outcome.ok, outcome.error
    assert outcome.endpoint == devenv["CLUSTER_B_ETCD_ENDPOINT"]


def test_retention_keeps_exactly_n(cluster_a, minio, minio_s3, minio_bucket):
    provider = get_provider(minio)
    taken = []
    for _ in range(4):
        row = _row(cluster_a, minio)
        outcome, _, _ = _take(row, provider)
        assert outcome.ok, outcome.error
        taken.append(record_completed(row, outcome))
    prefix = f"velero-etcd/{cluster_a.name}/"
    deleted = apply_retention(cluster_a, minio, 2, provider)
    assert deleted == [taken[0].name, taken[1].name]
    listed = minio_s3.list_objects_v2(Bucket=minio_bucket, Prefix=prefix).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == sorted(s.object_key for s in taken[2:])
    rows = EtcdSnapshot.objects.filter(cluster=cluster_a).order_by("created_at")
    assert [s.name for s in rows] == [s.name for s in taken[2:]]


def test_the_runbook_names_the_real_members(cluster_a, disk, devenv):
    row = record_completed(
        _row(cluster_a, disk), _take(_row(cluster_a, disk), get_provider(disk))[0]
    )
    steps = {step.key: step for step in runbook(row, etcd=etcd_endpoint(cluster_a))}
    (restore,) = steps["restore"].commands
    assert f"--name {devenv['CLUSTER_A_ETCD_NAME']} " in restore
    assert f"--initial-cluster {devenv['CLUSTER_A_ETCD_INITIAL_CLUSTER']} " in restore
    assert f"--initial-advertise-peer-urls {devenv['CLUSTER_A_ETCD_PEER_URL']} " in restore


def test_an_etcd_of_another_cluster_id_is_refused(cluster_a, minio, minio_s3, minio_bucket):
    row = _row(cluster_a, minio)
    request = snapshot_request(row)
    first, _, _ = _take(row, None, request)
    assert first.ok, first.error
    recorded = int(first.cluster_id, 16)
    same = replace(request, etcd=replace(request.etcd, expected_cluster_id=recorded))
    assert _take(row, None, same)[0].ok
    other = replace(request, etcd=replace(request.etcd, expected_cluster_id=recorded ^ 1))
    minio_s3.delete_object(Bucket=minio_bucket, Key=first.key)
    outcome, _, _ = _take(row, None, other)
    assert not outcome.ok and outcome.reason == "cluster_id"
    assert f"belongs to cluster ID {first.cluster_id}, not {recorded ^ 1:x}" in outcome.error
    assert minio_s3.list_objects_v2(Bucket=minio_bucket).get("KeyCount", 0) == 0


def test_a_cancelled_snapshot_leaves_nothing(cluster_a, minio, minio_s3, minio_bucket):
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 3  # a few chunks in

    outcome, _, lines = _take(_row(cluster_a, minio), get_provider(minio), should_stop=should_stop)
    assert outcome.cancelled and outcome.phase == "Cancelled" and not outcome.ok
    assert len(asked) == 4 and "nothing is kept" in lines[-1]
    assert minio_s3.list_objects_v2(Bucket=minio_bucket).get("KeyCount", 0) == 0
    assert minio_s3.list_multipart_uploads(Bucket=minio_bucket).get("Uploads", []) == []


class FailingProvider:
    """The real provider, whose writer breaks after ``limit`` bytes (a store gone mid-upload)."""

    def __init__(self, provider, limit):
        self.provider, self.limit = provider, limit

    def open_write(self, key, content_type="application/octet-stream"):
        writer = self.provider.open_write(key, content_type)
        original, limit = writer.write, self.limit

        def write(data):
            if writer.bytes_written + len(data) > limit:
                raise StorageError("The connection to the store was reset")
            return original(data)

        writer.write = write
        return writer

    def __getattr__(self, name):
        return getattr(self.provider, name)


def _ballast(kube_a, namespace: str, mib: int) -> None:
    """Grow etcd by about ``mib`` MiB with ConfigMaps in ``namespace`` (a fresh cluster's etcd
    holds well under 1 MiB). Deleting them later does not shrink etcd's file, nor the snapshot."""
    filler = os.urandom(700 * 1024).hex()[: 900 * 1024]
    for i in range(math.ceil(mib * 1024 / 900)):
        meta = {"name": f"ballast-{i}", "namespace": namespace}
        create(
            kube_a,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"filler": filler}},
        )


def test_a_failed_upload_leaves_no_partial_object(
    cluster_a, minio, minio_s3, minio_bucket, kube_a, fresh_namespace
):
    # 12 MiB: past the first 8 MiB multipart part, so a multipart upload must be aborted.
    _ballast(kube_a, fresh_namespace, 14)
    provider = FailingProvider(get_provider(minio), 12 * 1024 * 1024)
    outcome, _, lines = _take(_row(cluster_a, minio), provider)
    assert not outcome.ok and outcome.reason == "storage"
    assert outcome.error.startswith(f"Could not store the snapshot in location {minio.name}: ")
    assert "connection to the store was reset" in outcome.error
    assert minio_s3.list_objects_v2(Bucket=minio_bucket).get("KeyCount", 0) == 0
    assert minio_s3.list_multipart_uploads(Bucket=minio_bucket).get("Uploads", []) == []
    assert lines[-1].startswith("Failed: ")


# --- failures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_pki():
    """A CA that etcd does not know, and a client certificate it signed."""
    ca_key, ca = certs.new_ca("intruder-ca")
    key, cert = certs.new_leaf(ca_key, ca, "intruder", client=True)
    return {
        name: certs.pem(obj).decode() for name, obj in (("ca", ca), ("cert", cert), ("key", key))
    }


def _failing(workspace, disk, tmp_path, env, **etcd):
    cluster = _cluster(workspace, env, "A", **etcd)
    outcome, _, _ = _take(_row(cluster, disk), get_provider(disk), connect_timeout=3)
    assert not outcome.ok
    assert not list(tmp_path.rglob("*.db")), "a failed snapshot left an object"
    return outcome


def test_wrong_certificates_are_named(workspace, disk, tmp_path, devenv, foreign_pki):
    a = devenv["CLUSTER_A_ETCD_ENDPOINT"]
    good = {
        "etcd_ca": _read(devenv, "CLUSTER_A_ETCD_CA"),
        "etcd_cert": _read(devenv, "CLUSTER_A_ETCD_CERT"),
        "etcd_key": _read(devenv, "CLUSTER_A_ETCD_KEY"),
    }
    cases = [
        (
            {"etcd_endpoint": a, "etcd_ca": good["etcd_ca"]},
            f"etcd at {a} requires a client certificate: add the client certificate and key "
            "to the cluster.",
            "tls_client",
        ),
        (
            {"etcd_endpoint": a, "etcd_ca": good["etcd_ca"]}
            | {"etcd_cert": foreign_pki["cert"], "etcd_key": foreign_pki["key"]},
            f"etcd at {a} rejected the client certificate (it is not signed by a CA that etcd "
            "trusts, or it is not a client certificate).",
            "tls_client",
        ),
        (
            good | {"etcd_endpoint": a, "etcd_ca": foreign_pki["ca"]},
            f"The server certificate of etcd at {a} is not signed by the given CA (unable to "
            "get local issuer certificate).",
            "tls_server",
        ),
        (
            good | {"etcd_endpoint": a, "etcd_cert": foreign_pki["cert"]},
            "The etcd client key does not belong to the client certificate.",
            "config",
        ),
        (
            good | {"etcd_endpoint": a.replace("https://", "http://")},
            f"etcd at {a.replace('https://', 'http://')} expects TLS: use {a} and add its CA "
            "certificate and a client certificate.",
            "tls_mismatch",
        ),
    ]
    b = devenv["CLUSTER_B_ETCD_ENDPOINT"]
    b_tls = b.replace("http://", "https://")
    cases.append(
        (
            good | {"etcd_endpoint": b_tls},
            f"etcd at {b_tls} does not speak TLS: use {b} (or turn on TLS in etcd).",
            "tls_mismatch",
        )
    )
    for etcd, sentence, reason in cases:
        outcome = _failing(workspace, disk, tmp_path, devenv, **etcd)
        assert (outcome.error, outcome.reason) == (sentence, reason)
        assert good["etcd_key"].strip() not in outcome.error


@contextlib.contextmanager
def silent_server():
    """Accepts connections and never answers (a hung etcd or a black-holing proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_unreachable_and_silent_endpoints_are_named(workspace, disk, tmp_path, devenv):
    ca = _read(devenv, "CLUSTER_A_ETCD_CA")
    outcome = _failing(
        workspace, disk, tmp_path, devenv, etcd_endpoint="https://127.0.0.1:9", etcd_ca=ca
    )
    assert outcome.error == "Nothing answers at https://127.0.0.1:9 (connection refused)."
    assert outcome.reason == "unreachable"
    outcome = _failing(
        workspace, disk, tmp_path, devenv, etcd_endpoint="https://etcd.invalid:2379", etcd_ca=ca
    )
    assert outcome.error.startswith("Nothing answers at https://etcd.invalid:2379")
    with silent_server() as port:
        outcome = _failing(
            workspace, disk, tmp_path, devenv, etcd_endpoint=f"https://127.0.0.1:{port}"
        )
    assert outcome.error == f"etcd at https://127.0.0.1:{port} did not answer within 3 seconds."
    assert outcome.reason == "timeout"
    assert 2.5 < outcome.duration_seconds < 10
