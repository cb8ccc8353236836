"""Jobs run for real. Cancelling running jobs: a backup, a restore and an etcd snapshot of
cluster A into MinIO, each cancelled at a safe point in the middle of its work
(as a person pressing Cancel then), end ``cancelled`` with nothing they wrote
left behind: no partial archive, no half-finished multipart upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from backups.engine.storage.layout import Layout
from backups.jobs import (
    BackupJob,
    EtcdRestoreJob,
    RestoreJob,
    SnapshotJob,
    start_backup,
    start_etcd_restore,
    start_restore,
    start_snapshot,
)
from backups.models import EtcdPolicy, Status
from tests import factories
from tests.integration.provider_support import location as store_location
from workspaces.kube import flatten_kubeconfig
from workspaces.models import AuditEvent
from workspaces.registration import register_cluster
from workspaces.roles import Role

pytestmark = pytest.mark.integration


def cancelled_when(job_class, moment):
    """``job_class`` whose run is cancelled at the first progress call where
    ``moment(done, phase)`` holds, and which reads the row at every callback.
    ``.at`` keeps (done, phase) of that moment."""

    class CancelledMidway(job_class):
        stop_check_every = 0.0
        at: list = []

        def progress(self, done, total, phase):
            if moment(done, phase) and not self.row.cancel_requested:
                self.at.append((done, phase))
                job_class.cancel(self.row, by=self.row.created_by)
            super().progress(done, total, phase)

    return CancelledMidway


@pytest.fixture
def place(db, devenv, minio_bucket):
    admin = factories.user("admin")
    ws = factories.workspace("Demo")
    ws.grant(Role.ADMIN, user=admin)
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    cluster = register_cluster(
        workspace=ws,
        name="cluster-a",
        kubeconfig=flatten_kubeconfig(path.read_text(), path.parent),
        etcd_endpoint=devenv["CLUSTER_A_ETCD_ENDPOINT"],
        etcd_ca=Path(devenv["CLUSTER_A_ETCD_CA"]).read_text(),
        etcd_cert=Path(devenv["CLUSTER_A_ETCD_CERT"]).read_text(),
        etcd_key=Path(devenv["CLUSTER_A_ETCD_KEY"]).read_text(),
    )
    location = store_location("minio", devenv, minio_bucket, prefix="velero")
    location.workspace, location.name = ws, "minio"
    location.save()
    return admin, cluster, location


def left_in(s3, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """Objects under ``prefix``, and multipart uploads still open anywhere in the bucket."""
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [o["Key"] for o in objects], [u["Key"] for u in uploads]


def test_a_cancelled_backup_leaves_no_archive_in_the_store(place, minio_s3, minio_bucket):
    admin, cluster, location = place
    backup = start_backup(cluster, location, by=admin)
    # Inside the archive upload: items written, the multipart upload open.
    job = cancelled_when(BackupJob, lambda done, phase: done > 0 and phase.startswith("Backing"))
    assert job.run(backup.pk) == Status.CANCELLED
    backup.refresh_from_db()
    assert "Cancel requested by admin" in backup.log
    assert job.at and job.at[0][0] > 0  # items were already in the archive
    assert backup.error.startswith("Cancelled")
    prefix = Layout(location.prefix).backup_dir(backup.name)
    assert left_in(minio_s3, minio_bucket, prefix) == ([], [])


def test_a_cancelled_restore_stops_midway_and_writes_no_results(
    place, minio_s3, minio_bucket, fresh_namespace
):
    admin, cluster, location = place
    backup = start_backup(cluster, location, by=admin, include_namespaces=["shop"])
    assert BackupJob.run(backup.pk) == Status.COMPLETED
    backup.refresh_from_db()
    restore = start_restore(backup, cluster, by=admin, namespace_mapping={"shop": fresh_namespace})
    # At the start of the second group of objects: some are restored already.
    job = cancelled_when(RestoreJob, lambda done, phase: done > 0 and phase.startswith("Restoring"))
    assert job.run(restore.pk) == Status.CANCELLED
    restore.refresh_from_db()
    assert job.at and 0 < restore.items.count() < backup.items_done
    prefix = f"{location.prefix}/restores/{restore.name}/"
    assert left_in(minio_s3, minio_bucket, prefix) == ([], [])


def test_a_cancelled_etcd_snapshot_leaves_no_object(place, minio_s3, minio_bucket):
    admin, cluster, location = place
    snapshot = start_snapshot(cluster, location, by=admin)
    # The database streamed into the open upload, just before it commits.
    job = cancelled_when(SnapshotJob, lambda done, phase: done > 0)
    assert job.run(snapshot.pk) == Status.CANCELLED
    snapshot.refresh_from_db()
    assert job.at and job.at[0][0] > 0 and snapshot.object_key == ""
    key = Layout(location.prefix).etcd_file(cluster.name, snapshot.name)
    assert left_in(minio_s3, minio_bucket, key) == ([], [])
    assert EtcdPolicy.objects.get(cluster=cluster).last_status == "failed"


def test_an_etcd_restore_job_runs_the_runbook_and_fails_with_the_reason(place, tmp_path):
    """The local runbook for real, on a snapshot whose object is gone: its first
    step (the download) fails, before anything on the cluster is stopped."""
    admin, cluster, _ = place
    disk = factories.location(cluster.workspace, "disk", path=str(tmp_path))
    snapshot = factories.snapshot(
        cluster, disk, status=Status.COMPLETED, sha256="0" * 64, object_key="etcd/gone.db"
    )
    restore = start_etcd_restore(snapshot, by=admin)
    assert EtcdRestoreJob.run(restore.pk) == Status.FAILED
    restore.refresh_from_db()
    assert "gone.db" in restore.error or "Another restore" in restore.error
    assert restore.phase == "Failed" and "The cluster is running" in restore.log
    assert AuditEvent.objects.filter(action="restored etcd", object_id=str(restore.pk)).exists()
