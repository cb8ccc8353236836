"""The local test environment does what issue 3 promises: real clusters and stores answer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devenv.testing import boto3_s3, need, tls_etcd_client, unique
from devenv.testing import wait_for as _wait

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

DESIGN_KEYS = (
    "CLUSTER_A_KUBECONFIG",
    "CLUSTER_B_KUBECONFIG",
    "CLUSTER_A_ETCD_ENDPOINT",
    "CLUSTER_A_ETCD_CA",
    "CLUSTER_A_ETCD_CERT",
    "CLUSTER_A_ETCD_KEY",
    "CLUSTER_B_ETCD_ENDPOINT",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "STS_ROLE_ARN",
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "GCS_ENDPOINT",
    "AZURE_CONNECTION_STRING",
    "POSTGRES_URL",
    "REDIS_URL",
)


def test_env_file_has_the_design_keys(devenv):
    need(devenv, *DESIGN_KEYS)
    for key in ("CLUSTER_A_KUBECONFIG", "CLUSTER_A_ETCD_CA", "ETCDUTL", "ETCDCTL"):
        assert Path(devenv[key]).is_file(), key


# --- clusters ------------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", ["a", "b"])
def test_cluster_serves_kubernetes_1_36(devenv, request, cluster):
    from kubernetes import client

    api = request.getfixturevalue(f"kube_{cluster}")
    info = client.VersionApi(api).get_code()
    assert info.git_version.startswith("v1.36."), info.git_version
    assert (info.major, info.minor) == ("1", "36")

    kubectl = devenv.get("KUBECTL")
    if kubectl and Path(kubectl).exists():
        kubeconfig = devenv[f"CLUSTER_{cluster.upper()}_KUBECONFIG"]
        out = subprocess.run(
            [kubectl, "--kubeconfig", kubeconfig, "version", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout)["serverVersion"]["gitVersion"].startswith("v1.36.")


@pytest.mark.parametrize("cluster", ["a", "b"])
def test_namespace_deletion_completes(request, cluster):
    """The controller manager runs: a deployment gets a replica set, a namespace goes away."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from devenv.demo_objects import namespace_objects

    api = request.getfixturevalue(f"kube_{cluster}")
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    ns = unique("t-delete")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    deployment = next(o for o in namespace_objects("shop") if o["kind"] == "Deployment")
    deployment["metadata"]["namespace"] = ns
    deployment["spec"]["template"]["spec"].pop("serviceAccountName")
    apps.create_namespaced_deployment(ns, deployment)
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "b"})
    )
    _wait(
        lambda: apps.list_namespaced_replica_set(ns).items,
        30,
        "the deployment controller to create a replica set",
    )

    core.delete_namespace(ns)

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as err:
            return err.status == 404
        return False

    _wait(gone, 60, f"namespace {ns} to be deleted on cluster {cluster}")


def test_etcd_a_requires_client_certificates(devenv):
    need(devenv, "CLUSTER_A_ETCD_ENDPOINT", "CLUSTER_A_ETCD_CA")
    assert devenv["CLUSTER_A_ETCD_ENDPOINT"].startswith("https://")

    async def with_certs():
        client, connect = tls_etcd_client(devenv)
        await connect()
        try:
            key = f"/palette-test/{unique()}".encode()
            await client.put(key, b"hello")
            assert (await client.get(key)).value == b"hello"
            await client.delete(key)
            # The Maintenance API streams a snapshot, as the console's etcd backups do.
            buf = io.BytesIO()
            await client.snapshot(buf)
            assert buf.tell() > 1024
            # Kubernetes keeps its objects under /registry.
            assert await client.get_prefix(b"/registry/namespaces/")
        finally:
            await client.close()

    async def without_certs():
        client, connect = tls_etcd_client(devenv, with_certs=False)
        await connect()
        try:
            await client.get(b"/registry/namespaces/default")
        finally:
            await client.close()

    asyncio.run(with_certs())
    # Without a client certificate the TLS handshake fails (CERTIFICATE_REQUIRED).
    from aetcd.exceptions import ConnectionFailedError

    with pytest.raises(ConnectionFailedError):
        asyncio.run(without_certs())


def test_etcd_b_answers_plain_http(devenv):
    import urllib.request

    (endpoint,) = need(devenv, "CLUSTER_B_ETCD_ENDPOINT")
    with urllib.request.urlopen(f"{endpoint}/health", timeout=5) as resp:  # noqa: S310
        assert json.loads(resp.read())["health"] == "true"


# --- object stores -------------------------------------------------------------------------


def _roundtrip_boto3(s3, bucket: str) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.put_object(Bucket=bucket, Key="dir/small.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="dir/small.txt")["Body"].read() == b"hello"
    big = os.urandom(12 * 1024 * 1024)
    # Multipart: parts of 5 MiB (the S3 minimum), as a streamed backup archive is written.
    s3.upload_fileobj(
        io.BytesIO(big),
        bucket,
        "dir/big.bin",
        Config=TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20),
    )
    got = io.BytesIO()
    s3.download_fileobj(bucket, "dir/big.bin", got)
    assert hashlib.sha256(got.getvalue()).digest() == hashlib.sha256(big).digest()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["Contents"]]
    assert keys == ["dir/big.bin", "dir/small.txt"]
    s3.delete_object(Bucket=bucket, Key="dir/small.txt")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_minio_with_boto3(minio_s3, minio_bucket):
    _roundtrip_boto3(minio_s3, minio_bucket)


def test_minio_rejects_a_wrong_secret(devenv, minio_bucket):
    from botocore.exceptions import ClientError

    bad = boto3_s3(devenv["MINIO_ENDPOINT"], devenv["MINIO_ACCESS_KEY"], "not-the-secret")
    with pytest.raises(ClientError) as excinfo:
        bad.list_objects_v2(Bucket=minio_bucket)
    assert excinfo.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_minio_with_the_minio_client(devenv, minio_bucket):
    from minio import Minio

    endpoint, key, secret = need(devenv, "MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")
    mc = Minio(endpoint.split("://")[1], access_key=key, secret_key=secret, secure=False)
    mc.put_object(minio_bucket, "a/b.txt", io.BytesIO(b"minio"), length=5)
    resp = mc.get_object(minio_bucket, "a/b.txt")
    try:
        assert resp.read() == b"minio"
    finally:
        resp.close()
        resp.release_conn()
    assert [o.object_name for o in mc.list_objects(minio_bucket, prefix="a/")] == ["a/b.txt"]
    mc.remove_object(minio_bucket, "a/b.txt")
    assert list(mc.list_objects(minio_bucket)) == []


def test_moto_s3_with_sts_assume_role(devenv, moto_s3, s3_bucket):
    import boto3

    endpoint, key, secret, role = need(
        devenv, "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "STS_ROLE_ARN"
    )
    sts = boto3.client(
        "sts",
        endpoint_url=devenv.get("STS_ENDPOINT", endpoint),
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    creds = sts.assume_role(
        RoleArn=role, RoleSessionName="palette-test", ExternalId=unique("palette-external")
    )["Credentials"]
    assert creds["AccessKeyId"] != key and creds["SessionToken"]

    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    who = session.client("sts", endpoint_url=devenv.get("STS_ENDPOINT", endpoint))
    assert ":assumed-role/" in who.get_caller_identity()["Arn"]
    temp_s3 = session.client("s3", endpoint_url=endpoint)
    # The assumed role lives in moto's default account, so it sees the bucket.
    _roundtrip_boto3(temp_s3, s3_bucket)


def test_gcs_emulator(gcs_client, gcs_bucket):
    bucket = gcs_client.bucket(gcs_bucket)
    bucket.blob("small.txt").upload_from_string(b"gcs")
    assert bucket.blob("small.txt").download_as_bytes() == b"gcs"

    big = os.urandom(9 * 1024 * 1024)  # over 8 MiB: the client uses a resumable upload
    blob = bucket.blob("big.bin", chunk_size=4 * 1024 * 1024)  # three chunks
    blob.upload_from_file(io.BytesIO(big), size=len(big))
    assert hashlib.sha256(bucket.blob("big.bin").download_as_bytes()).digest() == (
        hashlib.sha256(big).digest()
    )
    assert sorted(b.name for b in gcs_client.list_blobs(gcs_bucket)) == ["big.bin", "small.txt"]
    bucket.blob("small.txt").delete()
    assert [b.name for b in gcs_client.list_blobs(gcs_bucket)] == ["big.bin"]


def test_azurite(azure_blob_service, azure_container):
    container = azure_blob_service.get_container_client(azure_container)
    container.upload_blob("dir/small.txt", b"azure")
    assert container.download_blob("dir/small.txt").readall() == b"azure"
    big = os.urandom(9 * 1024 * 1024)
    container.upload_blob("dir/big.bin", io.BytesIO(big), length=len(big), max_concurrency=2)
    assert container.download_blob("dir/big.bin").readall() == big
    assert sorted(b.name for b in container.list_blobs(name_starts_with="dir/")) == [
        "dir/big.bin",
        "dir/small.txt",
    ]
    container.delete_blob("dir/small.txt")
    assert [b.name for b in container.list_blobs()] == ["dir/big.bin"]


def test_postgres_and_redis(devenv):
    import psycopg
    import redis

    url, redis_url = need(devenv, "POSTGRES_URL", "REDIS_URL")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    r = redis.Redis.from_url(redis_url)
    key = unique("palette-test")
    r.set(key, "1", ex=10)
    assert r.get(key) == b"1"


# --- seeding -------------------------------------------------------------------------------


def test_seed_creates_the_demo_mix(devenv, kube_a):
    from kubernetes import client

    from devenv.seed import seed

    counts = seed(devenv["CLUSTER_A_KUBECONFIG"], log=lambda *_: None)
    for kind in (
        "Namespace",
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "CustomResourceDefinition",
        "Widget",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "ClusterRole",
        "ClusterRoleBinding",
        "StorageClass",
    ):
        assert counts[kind] >= 1, kind
    # A second run is harmless (everything answers 409 and is skipped).
    seed(devenv["CLUSTER_A_KUBECONFIG"], log=lambda *_: None)

    core, apps = client.CoreV1Api(kube_a), client.AppsV1Api(kube_a)
    assert {"shop", "billing", "monitoring"} <= {
        n.metadata.name for n in core.list_namespace().items
    }
    _wait(lambda: apps.list_namespaced_replica_set("shop").items, 30, "replica sets in shop")
    types = {s.spec.type for s in core.list_namespaced_service("shop").items}
    assert types == {"ClusterIP", "NodePort"}
    backend = core.list_namespaced_config_map("shop", label_selector="tier=backend").items
    assert {c.metadata.name for c in backend} == {"cart-config", "catalog-config"}
    widgets = client.CustomObjectsApi(kube_a).list_namespaced_custom_object(
        "demo.palette.io", "v1", "shop", "widgets"
    )
    assert len(widgets["items"]) == 3
    pv = core.read_persistent_volume("shop-data")
    assert (pv.spec.claim_ref.namespace, pv.spec.claim_ref.name) == ("shop", "data")
    _wait(
        lambda: (
            core.read_namespaced_persistent_volume_claim("data", "shop").status.phase == "Bound"
        ),
        30,
        "the claim shop/data to be Bound to its volume",
    )


def test_seed_many_objects(devenv, kube_b):
    from kubernetes import client

    from devenv.seed import api_client, seed_many

    prefix = unique("t-bulk")
    api = api_client(devenv["CLUSTER_B_KUBECONFIG"], pool=8)
    try:
        counts = seed_many(api, 90, namespaces=3, workers=8, prefix=prefix, log=lambda *_: None)
        assert counts["created"] == 90
        core = client.CoreV1Api(kube_b)
        names = [f"{prefix}-{k:03d}" for k in range(3)]
        cms = sum(
            len(core.list_namespaced_config_map(n, label_selector="palette.io/bulk=true").items)
            for n in names
        )
        assert cms == 30
    finally:
        for name in (f"{prefix}-{k:03d}" for k in range(3)):
            with contextlib.suppress(Exception):
                client.CoreV1Api(kube_b).delete_namespace(name)
        api.close()


# --- the environment itself ----------------------------------------------------------------


def test_second_up_is_fast_and_status_reports_everything_running(devenv):
    started = time.monotonic()
    up = subprocess.run(
        [sys.executable, "-m", "devenv", "up"], cwd=REPO, capture_output=True, text=True
    )
    took = time.monotonic() - started
    assert up.returncode == 0, up.stdout + up.stderr
    assert took < 20, f"a second `up` took {took:.1f}s:\n{up.stdout}"
    status = subprocess.run(
        [sys.executable, "-m", "devenv", "status"], cwd=REPO, capture_output=True, text=True
    )
    assert status.returncode == 0, status.stdout
    lines = [line.split() for line in status.stdout.splitlines() if line.strip()]
    assert len(lines) >= 10
    assert all(parts[1] == "running" for parts in lines), status.stdout


def test_etcd_snapshot_restore_on_cluster_b(devenv, kube_b, tmp_path):
    """The restore runbook works on the local targets devenv lists (the engine's one
    procedure, through ``python -m devenv component``): objects made after the snapshot
    are gone afterwards."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from backups.engine.etcd.local import find_local_target, load_local_targets
    from backups.engine.etcd.restore import restore_locally
    from backups.engine.etcd.snapshot import take_snapshot
    from backups.engine.inputs import EtcdEndpoint, EtcdRestoreRequest, SnapshotRequest, Store
    from locations.providers.filesystem import FilesystemProvider

    core = client.CoreV1Api(kube_b)
    before, after = unique("t-before"), unique("t-after")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=before)))
    etcd = EtcdEndpoint("b", devenv["CLUSTER_B_ETCD_ENDPOINT"])
    store = Store(FilesystemProvider(str(tmp_path)), "disk", "p")
    taken = take_snapshot(
        SnapshotRequest("b-snap", etcd, store), progress=lambda *_: None, log=lambda _: None
    )
    assert taken.ok, taken.error
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=after)))

    targets = load_local_targets(devenv["ETCD_LOCAL_TARGETS_FILE"])
    target = find_local_target(targets, etcd.endpoint)
    assert target is not None and target.name == "b"
    request = EtcdRestoreRequest("b-snap", taken.key, taken.sha256, etcd, store, target)
    result = restore_locally(request, log=lambda _: None)
    assert result.ok, result.error

    core = client.CoreV1Api(kube_b)
    assert core.read_namespace(before).metadata.name == before
    with pytest.raises(ApiException) as excinfo:
        core.read_namespace(after)
    assert excinfo.value.status == 404
    core.delete_namespace(before)
