"""Expiry (gc_backups) and backup sync against real stores and real backups."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from backups.models import Backup, Status
from backups.tasks import run_backup
from locations.models import BackupLocation
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(db, devenv):
    ws = factories.workspace("Demo")
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    return Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )


def minio_location(devenv, ws, bucket, secret=None, name="minio"):
    return factories.location(
        ws, name, provider="minio", bucket=bucket, prefix="velero",
        endpoint_url=devenv["MINIO_ENDPOINT"], force_path_style=True,
        credentials={"access_key": devenv["MINIO_ACCESS_KEY"],
                     "secret_key": secret or devenv["MINIO_SECRET_KEY"]},
    )  # fmt: skip


def real_backup(cluster, location, name, namespace="monitoring") -> Backup:
    backup = Backup.objects.create(
        name=name, workspace=cluster.workspace, cluster=cluster, cluster_name=cluster.name,
        location=location, include_namespaces=[namespace],
    )  # fmt: skip
    assert run_backup(backup.pk) == Status.COMPLETED
    backup.refresh_from_db()
    return backup


def keys(minio_s3, bucket, prefix):
    listed = minio_s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def test_gc_deletes_expired_backups_from_storage_and_keeps_the_rest(
    cluster, devenv, minio_bucket, minio_s3, capsys
):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    old = real_backup(cluster, location, "old-one")
    fresh = real_backup(cluster, location, "fresh-one")
    Backup.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    call_command("gc_backups")
    assert "deleted old-one" in capsys.readouterr().out
    assert not Backup.objects.filter(pk=old.pk).exists()
    assert keys(minio_s3, minio_bucket, "velero/backups/old-one/") == []
    assert Backup.objects.filter(pk=fresh.pk).exists()
    assert keys(minio_s3, minio_bucket, "velero/backups/fresh-one/")


def test_gc_reports_an_unavailable_location_and_retries_later(
    cluster, devenv, minio_bucket, minio_s3
):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    old = real_backup(cluster, location, "old-one")
    Backup.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    good_credentials = location.credentials
    BackupLocation.objects.filter(pk=location.pk).update(
        credentials={**good_credentials, "secret_key": "revoked-secret"}
    )
    with pytest.raises(CommandError, match="retried"):
        call_command("gc_backups")
    old.refresh_from_db()
    assert "deleting it from minio failed" in old.error
    assert "revoked-secret" not in old.error
    assert keys(minio_s3, minio_bucket, "velero/backups/old-one/")
    location.refresh_from_db()
    location.credentials = good_credentials
    location.save()
    call_command("gc_backups")
    assert not Backup.objects.filter(pk=old.pk).exists()
    assert keys(minio_s3, minio_bucket, "velero/backups/old-one/") == []


def test_an_empty_console_imports_the_backups_of_a_bucket(cluster, devenv, minio_bucket, capsys):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    made = real_backup(cluster, location, "nightly-cluster-a-20261124000000")
    sha256, items = made.sha256, made.items_done
    Backup.objects.all().delete()  # the console forgets; the bucket keeps the backup
    call_command("sync_location", "minio")
    assert "1 backup imported" in capsys.readouterr().out
    imported = Backup.objects.get(name="nightly-cluster-a-20261124000000")
    assert imported.source == Backup.Source.IMPORTED
    assert imported.status == Status.COMPLETED
    assert imported.cluster == cluster and imported.cluster_name == "cluster-a"
    assert imported.items_done == items
    assert imported.sha256 == sha256  # from the annotation the console writes
    assert imported.include_namespaces == ["monitoring"]
    # A second sync imports nothing new.
    call_command("sync_location", "minio")
    assert "0 backups imported" in capsys.readouterr().out


def test_sync_removes_entries_whose_files_vanished(cluster, devenv, minio_bucket, minio_s3, capsys):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    real_backup(cluster, location, "short-lived")
    for key in keys(minio_s3, minio_bucket, "velero/backups/short-lived/"):
        minio_s3.delete_object(Bucket=minio_bucket, Key=key)
    call_command("sync_location", "minio")
    assert "1 backup removed" in capsys.readouterr().out
    assert not Backup.objects.filter(name="short-lived").exists()


def test_imported_backups_are_read_only(cluster, devenv, minio_bucket):
    from backups.jobs import JobRefused, delete_backup

    location = minio_location(devenv, cluster.workspace, minio_bucket)
    real_backup(cluster, location, "theirs")
    Backup.objects.all().delete()
    call_command("sync_location", "minio")
    with pytest.raises(JobRefused, match="read-only"):
        delete_backup(Backup.objects.get(name="theirs"))


def test_sync_refuses_a_location_without_workspace(db, tmp_path):
    factories.location(None, "orphan", path=str(tmp_path))
    with pytest.raises(CommandError, match="no workspace"):
        call_command("sync_location", "orphan")
