"""Protection against the real stores and clusters: sealed backups on MinIO and moto S3
(with moto's KMS), restored into cluster B; damage caught before anything is applied;
key rotation; object lock on MinIO; a copy MinIO -> moto that restores on its own."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.core.management.base import CommandError

from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import CHUNK, MAGIC, SALT, TAG, is_sealed
from backups.jobs import delete_backup
from backups.models import Backup, Status
from devenv.testing import unique
from locations.models import BackupLocation
from locations.object_lock import Locked
from locations.validation import validate_and_record
from tests import factories
from tests.integration.provider_support import location as store_location
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration
BLOBS = (1, 2, 3, 4)


@pytest.fixture
def eager():
    from palette_site.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def world(db, devenv, eager):
    ws = factories.workspace(unique("prot"))
    for name, var in (("cluster-a", "CLUSTER_A_KUBECONFIG"), ("cluster-b", "CLUSTER_B_KUBECONFIG")):
        path = Path(devenv[var])
        Cluster.objects.create(workspace=ws, name=name,
                               kubeconfig=flatten_kubeconfig(path.read_text(), path.parent))  # fmt: skip
    return ws


def saved(ws, kind, env, bucket, **extra) -> BackupLocation:
    location = store_location(kind, env, bucket, **extra)
    location.name, location.workspace, location.prefix = unique("loc"), ws, "velero"
    location.full_clean()
    location.save()
    result = validate_and_record(location)
    assert result.ok, result.message
    return location


def seed(kube_a, namespace: str) -> dict:
    """ConfigMaps of random text (the archive spans more than two sealed chunks) and a Secret."""
    from kubernetes import client

    core = client.CoreV1Api(kube_a)
    data = {}
    for n in BLOBS:
        text = base64.b64encode(os.urandom(700 * 1024)).decode()
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"blob-{n}"), data={"blob": text}))  # fmt: skip
        data[f"blob-{n}"] = text
    core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"), string_data={"password": "hunter2-" + unique()}))  # fmt: skip
    data["creds"] = core.read_namespaced_secret("creds", namespace).data
    return data


def restored(kube_b, namespace: str) -> dict | None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube_b)
    try:
        found = {f"blob-{n}": core.read_namespaced_config_map(f"blob-{n}", namespace).data["blob"]
                 for n in BLOBS}  # fmt: skip
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    found["creds"] = core.read_namespaced_secret("creds", namespace).data
    return found


@contextlib.contextmanager
def target_namespace(kube_b):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    name = unique("pr")
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            client.CoreV1Api(kube_b).delete_namespace(name)


def backup(location, namespace) -> Backup:
    name = unique("prot")
    call_command("backup", "cluster-a", "--location", location.name, "--include-namespaces",
                 namespace, "--name", name, "--wait", stdout=io.StringIO())  # fmt: skip
    found = Backup.objects.get(location=location, name=name)
    assert found.status == Status.COMPLETED, found.error
    return found


def restore(backup_row, namespace, target) -> None:
    call_command("restore", backup_row.name, "--to", "cluster-b", "--location",
                 backup_row.location.name, "--namespace-mapping", f"{namespace}={target}",
                 "--wait", stdout=io.StringIO())  # fmt: skip


def keys_of(s3, bucket, backup_row) -> list[str]:
    prefix = Layout(backup_row.location.prefix).backup_dir(backup_row.name)
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]


def assert_unreadable(blob: bytes) -> None:
    assert is_sealed(blob)
    with pytest.raises((OSError, EOFError, gzip.BadGzipFile)):
        gzip.decompress(blob)
    with pytest.raises(tarfile.TarError), tarfile.open(fileobj=io.BytesIO(blob)):
        pass
    with pytest.raises(ValueError):
        json.loads(blob)


# 1. Sealed on MinIO: unreadable in the bucket, restores identically, across a rotation ----


def test_a_sealed_backup_on_minio_restores_identically_across_a_key_rotation(
    world, devenv, minio_s3, minio_bucket, kube_a, kube_b, fresh_namespace
):
    location = saved(world, "minio", devenv, minio_bucket, encrypt=True)
    data = seed(kube_a, fresh_namespace)
    old = backup(location, fresh_namespace)
    for key in keys_of(minio_s3, minio_bucket, old):
        assert_unreadable(minio_s3.get_object(Bucket=minio_bucket, Key=key)["Body"].read())
    call_command("rotate_location_key", location.name, stdout=io.StringIO())
    new = backup(location, fresh_namespace)
    assert old.key_id and new.key_id and old.key_id != new.key_id
    for row in (old, new):
        with target_namespace(kube_b) as target:
            restore(row, fresh_namespace, target)
            assert restored(kube_b, target) == data


# 2. Damage on moto S3 (data keys wrapped by moto's KMS) fails before anything is applied --


def swap_first_chunks(blob: bytes) -> bytes:
    start = len(MAGIC) + 1 + blob[len(MAGIC)] + SALT  # past the header
    size = CHUNK + TAG
    return (
        blob[:start]
        + blob[start + size : start + 2 * size]
        + blob[start : start + size]
        + blob[start + 2 * size :]
    )


def test_damaged_sealed_archives_fail_before_anything_is_applied(
    world, devenv, moto_s3, s3_bucket, kube_a, kube_b, fresh_namespace
):
    import boto3

    kms = boto3.client(
        "kms",
        endpoint_url=devenv["S3_ENDPOINT"],
        region_name=devenv.get("S3_REGION", "us-east-1"),
        aws_access_key_id=devenv["S3_ACCESS_KEY"],
        aws_secret_access_key=devenv["S3_SECRET_KEY"],
    )
    kms_key = kms.create_key(Description=unique("palette-test"))["KeyMetadata"]["KeyId"]
    location = saved(world, "s3-moto", devenv, s3_bucket, encrypt=True, kms_key_id=kms_key)
    data = seed(kube_a, fresh_namespace)
    row = backup(location, fresh_namespace)
    assert location.keys.get().wrapped_by == "kms"
    key = Layout(location.prefix).backup_file(row.name, "archive")
    good = moto_s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert len(good) > 2 * (CHUNK + TAG)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    damaged = {
        "flip": bytes(flipped),
        "truncate": good[: len(good) - 100],
        "swap": swap_first_chunks(good),
    }
    for what, blob in damaged.items():
        moto_s3.put_object(Bucket=s3_bucket, Key=key, Body=blob)
        with target_namespace(kube_b) as target:
            with pytest.raises(CommandError):
                restore(row, fresh_namespace, target)
            failed = row.restores.order_by("-id").first()
            assert failed.status == Status.FAILED, what
            assert "does not open" in failed.error or "truncated" in failed.error, failed.error
            assert failed.created_count == 0 and restored(kube_b, target) is None, what
    moto_s3.put_object(Bucket=s3_bucket, Key=key, Body=good)  # the intact one restores
    with target_namespace(kube_b) as target:
        restore(row, fresh_namespace, target)
        assert restored(kube_b, target) == data


# 3. Object lock on MinIO ----------------------------------------------------------------


@pytest.fixture
def lock_bucket(minio_s3):
    name = unique("palette-lock")
    minio_s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    with contextlib.suppress(ClientError):
        for page in minio_s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                minio_s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"],
                                       BypassGovernanceRetention=True)  # fmt: skip
        minio_s3.delete_bucket(Bucket=name)


def test_a_locked_backup_carries_its_retention_and_cannot_be_deleted_early(
    world, devenv, minio_s3, lock_bucket, kube_a, fresh_namespace
):
    location = saved(world, "minio", devenv, lock_bucket, object_lock_mode="governance",
                     object_lock_days=1)  # fmt: skip
    seed(kube_a, fresh_namespace)
    row = backup(location, fresh_namespace)
    assert row.locked_until is not None and row.locked_until.microsecond == 0
    assert row.locked_until >= row.started_at.replace(microsecond=0) + timedelta(days=1)
    prefix = Layout(location.prefix).backup_dir(row.name)
    versions = minio_s3.list_object_versions(Bucket=lock_bucket, Prefix=prefix)["Versions"]
    assert versions
    for version in versions:
        held = minio_s3.get_object_retention(Bucket=lock_bucket, Key=version["Key"],
                                             VersionId=version["VersionId"])["Retention"]  # fmt: skip
        assert held["Mode"] == "GOVERNANCE"
        assert held["RetainUntilDate"].replace(microsecond=0) == row.locked_until
    with pytest.raises(Locked, match=row.locked_until.strftime("%Y-%m-%d")):
        delete_backup(row)
    with pytest.raises(ClientError, match="AccessDenied|InvalidRequest|WORM"):
        minio_s3.delete_object(Bucket=lock_bucket, Key=versions[0]["Key"],
                               VersionId=versions[0]["VersionId"])  # fmt: skip


def test_validation_finds_a_bucket_without_object_lock(world, devenv, minio_bucket):
    location = store_location("minio", devenv, minio_bucket, object_lock_mode="compliance",
                              object_lock_days=1)  # fmt: skip
    location.name, location.workspace = unique("loc"), world
    result = validate_and_record(location)
    assert not result.ok and "does not have object lock enabled" in result.message


# 4. A copy MinIO -> moto restores after the first location is gone -----------------------


def test_a_copy_restores_after_the_first_location_is_removed(
    world, devenv, minio_bucket, s3_bucket, moto_s3, kube_a, kube_b, fresh_namespace
):
    first = saved(world, "minio", devenv, minio_bucket, encrypt=True)
    second = saved(world, "s3-moto", devenv, s3_bucket, encrypt=True)
    data = seed(kube_a, fresh_namespace)
    original = backup(first, fresh_namespace)
    out = io.StringIO()
    call_command("copy_backup", original.name, "--from", first.name, "--to", second.name,
                 "--wait", stdout=out)  # fmt: skip
    assert "every SHA-256 matched" in out.getvalue()
    copy = Backup.objects.get(location=second, name=original.name)
    assert copy.origin == f"{original.name} in {first.name}" and copy.sha256 == original.sha256
    for key in keys_of(moto_s3, s3_bucket, copy):
        assert is_sealed(moto_s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    delete_backup(original)
    first.delete()
    copy.refresh_from_db()
    with target_namespace(kube_b) as target:
        restore(copy, fresh_namespace, target)
        assert restored(kube_b, target) == data
