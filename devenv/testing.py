"""Helpers for tests against the local environment (used by tests/integration/conftest.py).

Clients for the clusters and stores described by ``.devenv/env``, unique names, and an
``aetcd`` client that speaks TLS with client certificates.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import pytest


def wait_for(predicate, timeout: float, what: str):
    """``predicate()``'s first truthy value, polled every 0.25 s; AssertionError after
    ``timeout`` seconds, naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def need(env: dict, *keys: str) -> tuple[str, ...]:
    missing = [k for k in keys if not env.get(k)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing from .devenv/env: that component is not up "
            f"(up: {env.get('DEVENV_COMPONENTS', 'nothing')}); see `python -m devenv up`"
        )
    return tuple(env[k] for k in keys)


def kube_api_client(kubeconfig: str):
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 16
    return client.ApiClient(cfg)


def kubectl(env: dict, *args: str, cluster: str = "a", timeout: float = 120) -> str:
    """Run the environment's kubectl on a local cluster ("a" or "b"); fail the test with
    kubectl's message unless it succeeds; return its output."""
    import subprocess

    prefix = f"CLUSTER_{cluster.upper()}_"
    binary, kubeconfig = need(env, "KUBECTL", prefix + "KUBECONFIG")
    proc = subprocess.run(
        [binary, f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def boto3_s3(endpoint: str, key: str, secret: str, region: str = "us-east-1"):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )


def empty_and_delete_bucket(s3, bucket: str) -> None:
    from botocore.exceptions import ClientError

    with contextlib.suppress(ClientError):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        s3.delete_bucket(Bucket=bucket)


def tls_etcd_client(env: dict, with_certs: bool = True):
    """An aetcd client over TLS. aetcd only opens insecure channels, so its channel factory is
    swapped for a TLS one while it connects."""
    import aetcd
    import aetcd.rpc
    import grpc

    ca = Path(env["CLUSTER_A_ETCD_CA"]).read_bytes()
    if with_certs:
        creds = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=Path(env["CLUSTER_A_ETCD_KEY"]).read_bytes(),
            certificate_chain=Path(env["CLUSTER_A_ETCD_CERT"]).read_bytes(),
        )
    else:
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
    host, port = env["CLUSTER_A_ETCD_ENDPOINT"].split("://")[1].split(":")
    client = aetcd.Client(host=host, port=int(port), timeout=5)
    original = aetcd.rpc.insecure_channel

    async def connect():
        aetcd.rpc.insecure_channel = lambda target, options=None: aetcd.rpc.secure_channel(
            target, creds, options=options
        )
        try:
            await aetcd.Client.connect(client)
        finally:
            aetcd.rpc.insecure_channel = original

    return client, connect


def stops_shared_nodes(what: str):
    """A skip marker for tests that stop node pieces other test sessions use: they run in
    CI (one suite at a time) or when ``PALETTE_TEST_NODES_DOWN=1`` asks for it."""
    import pytest

    return pytest.mark.skipif(
        not (os.environ.get("CI") or os.environ.get("PALETTE_TEST_NODES_DOWN") == "1"),
        reason=f"{what}: runs in CI or with PALETTE_TEST_NODES_DOWN=1",
    )
