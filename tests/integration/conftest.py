"""Fixtures for tests against the real local services of `make devenv`.

The session fixture ``devenv`` runs ``python -m devenv up`` once (a running environment is
reused in seconds), seeds the demo mix into both clusters (a no-op when it is there) and
returns ``.devenv/env`` as a dict. Failing to bring it up is an
error, never a skip: only ``PALETTE_SKIP_DEVENV=1`` skips these tests, and says so.

Per test: ``fresh_namespace`` (on cluster A), ``fresh_namespace_b``, and one fresh bucket or
container per store (``minio_bucket``, ``s3_bucket``, ``gcs_bucket``, ``azure_container``),
emptied and deleted afterwards, so that tests never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devenv.testing import boto3_s3, empty_and_delete_bucket, kube_api_client, need, unique

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def devenv(request, tmp_path_factory) -> dict[str, str]:
    if os.environ.get("PALETTE_SKIP_DEVENV") == "1":
        pytest.skip("PALETTE_SKIP_DEVENV=1: the real local services of `make devenv` are off")
    from devenv import load_env

    # A subprocess, so that the services it starts are not this process's children. Its
    # output is shown live: a cold start builds Kubernetes for many minutes.
    capman = request.config.pluginmanager.getplugin("capturemanager")
    lines = []
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        proc = subprocess.Popen(
            [sys.executable, "-m", "devenv", "up"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for line in proc.stdout:
            lines.append(line)
            if len(lines) == 1:
                sys.stderr.write("\n")
            sys.stderr.write(f"[devenv] {line}")
        proc.wait()
    if proc.returncode != 0:
        pytest.fail(
            f"`python -m devenv up` failed (exit {proc.returncode}):\n{''.join(lines)}",
            pytrace=False,
        )
    env = load_env()
    _seed_both_clusters(env)
    _point_at_local_targets(env, tmp_path_factory)
    return env


def _point_at_local_targets(env: dict[str, str], tmp_path_factory) -> None:
    """Let the console restore etcd on the local clusters (``PALETTE_ETCD_LOCAL_TARGETS``),
    from the file `up` wrote, or (an environment an older `up` started) one written here."""
    from django.conf import settings

    from devenv import clusters

    path = env.get("ETCD_LOCAL_TARGETS_FILE", "")
    if not path or not Path(path).is_file():
        if not env.get("CLUSTER_A_ETCD_ENDPOINT"):
            return
        path = str(clusters.write_local_targets(tmp_path_factory.mktemp("etcd") / "targets.json"))
        env["ETCD_LOCAL_TARGETS_FILE"] = path
    settings.PALETTE_ETCD_LOCAL_TARGETS = path


def _seed_both_clusters(env: dict[str, str]) -> None:
    """Give both clusters the demo mix, as `make demo` does, so that a fresh environment (CI's)
    offers what the tests read: the demo namespaces and the ``widgets`` CRD, served. On a
    seeded cluster every object answers "already exists" and this takes about a second."""
    from devenv.seed import seed

    for key in ("CLUSTER_A_KUBECONFIG", "CLUSTER_B_KUBECONFIG"):
        if env.get(key):
            # Cluster A also runs the stateful demo apps (their volumes hold known data).
            seed(env[key], log=lambda *_: None, stateful=key == "CLUSTER_A_KUBECONFIG")


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube_a(devenv):
    (kubeconfig,) = need(devenv, "CLUSTER_A_KUBECONFIG")
    api = kube_api_client(kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session")
def kube_b(devenv):
    (kubeconfig,) = need(devenv, "CLUSTER_B_KUBECONFIG")
    api = kube_api_client(kubeconfig)
    yield api
    api.close()


@contextlib.contextmanager
def namespace_in(api, prefix: str = "t"):
    """Create a uniquely named namespace; delete it afterwards (without waiting)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    name = unique(prefix)
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"palette.io/test": "true"})
        )
    )
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name)


@pytest.fixture
def fresh_namespace(kube_a):
    with namespace_in(kube_a) as name:
        yield name


@pytest.fixture
def fresh_namespace_b(kube_b):
    with namespace_in(kube_b) as name:
        yield name


# --- object stores -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def minio_s3(devenv):
    """boto3 S3 client for MinIO (path-style, SigV4: MinIO checks signatures)."""
    return boto3_s3(*need(devenv, "MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"))


@pytest.fixture(scope="session")
def moto_s3(devenv):
    return boto3_s3(*need(devenv, "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"))


@pytest.fixture
def minio_bucket(minio_s3):
    name = unique("palette-test")
    minio_s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(minio_s3, name)


@pytest.fixture
def s3_bucket(moto_s3):
    name = unique("palette-test")
    moto_s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(moto_s3, name)


@pytest.fixture(scope="session")
def gcs_client(devenv):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    (endpoint,) = need(devenv, "GCS_ENDPOINT")
    return storage.Client(
        project=devenv.get("GCS_PROJECT", "test"),
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


@pytest.fixture
def gcs_bucket(gcs_client):
    bucket = gcs_client.create_bucket(unique("palette-test"))
    yield bucket.name
    with contextlib.suppress(Exception):
        for blob in gcs_client.list_blobs(bucket.name):
            blob.delete()
        bucket.delete()


@pytest.fixture(scope="session")
def azure_blob_service(devenv):
    from azure.storage.blob import BlobServiceClient

    (conn,) = need(devenv, "AZURE_CONNECTION_STRING")
    return BlobServiceClient.from_connection_string(conn)


@pytest.fixture
def azure_container(azure_blob_service):
    name = unique("palette-test")
    azure_blob_service.create_container(name)
    yield name
    with contextlib.suppress(Exception):
        azure_blob_service.delete_container(name)
