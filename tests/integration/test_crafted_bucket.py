"""The attacks on imported backups and downloads, against real MinIO and a real cluster:
crafted velero-backup.json files beside a real backup, a gzip bomb in the browser,
and a Viewer trying to download the archive."""

from __future__ import annotations

import json
import zlib

import pytest
from django.core.management import call_command
from django.urls import reverse

from backups.models import Backup
from backups.tasks import sync_locations
from locations.models import BackupLocation
from tests import factories
from tests.integration import test_expiry_and_sync as sync_tests
from tests.unit.test_sync_crafted import CRAFTED, velero_document
from workspaces.models import AuditEvent
from workspaces.roles import Role

pytestmark = pytest.mark.integration

cluster = sync_tests.cluster  # the fixture: cluster-a of devenv, in a workspace
minio_location, real_backup = sync_tests.minio_location, sync_tests.real_backup


def _put(minio_s3, bucket, prefix, folder, body) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    minio_s3.put_object(
        Bucket=bucket, Key=f"{prefix}/backups/{folder}/velero-backup.json", Body=raw
    )


def test_crafted_documents_in_minio_do_not_stop_the_sync(
    cluster, devenv, minio_bucket, minio_s3, capsys
):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    real_backup(cluster, location, "nightly-cluster-a-20261124000000")
    Backup.objects.all().delete()  # the console forgets; the bucket keeps the real backup
    for folder, document in CRAFTED.items():
        _put(minio_s3, minio_bucket, "velero", folder, document)
    _put(minio_s3, minio_bucket, "velero", "a" * 254, velero_document("a" * 254))
    # MinIO refuses CR/LF in keys, so the CR/LF is in the document's name only.
    _put(minio_s3, minio_bucket, "velero", "crlf", velero_document("crlf\r\nforged"))
    _put(minio_s3, minio_bucket, "velero", "big", b" " * (2 * 1024 * 1024))
    # A second location after it, in the same bucket under another prefix.
    other = factories.location(
        cluster.workspace, "minio-other", provider="minio", bucket=minio_bucket,
        prefix="other", endpoint_url=devenv["MINIO_ENDPOINT"], force_path_style=True,
        credentials=location.credentials,
    )  # fmt: skip
    _put(minio_s3, minio_bucket, "other", "theirs-1", velero_document("theirs-1"))
    BackupLocation.objects.update(status=BackupLocation.Status.AVAILABLE)

    call_command("sync_location", "minio")
    out = capsys.readouterr().out
    assert "1 backup imported" in out
    assert "skipped crlf: unreadable" in out and "skipped negative-count" in out
    assert "forged" not in out
    assert sync_locations() == 1  # the second location, after the crafted first one
    assert set(Backup.objects.values_list("name", flat=True)) == {
        "nightly-cluster-a-20261124000000",
        "theirs-1",
    }
    assert Backup.objects.get(name="theirs-1").location == other


def test_a_gzip_bomb_in_minio_is_refused_by_the_browser(
    cluster, devenv, minio_bucket, minio_s3, client
):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    backup = real_backup(cluster, location, "bombed")
    compressor = zlib.compressobj(9, wbits=31)
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(200)) + compressor.flush()
    minio_s3.put_object(
        Bucket=minio_bucket, Key="velero/backups/bombed/bombed-results.gz", Body=bomb
    )
    viewer = factories.user("viewer")
    cluster.workspace.grant(Role.VIEWER, user=viewer)
    client.force_login(viewer)
    page = client.get(reverse("backup_contents", args=[backup.pk]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert b"decompresses to more than 64 MiB" in page.content


def test_only_the_download_action_downloads_from_minio(cluster, devenv, minio_bucket, client):
    location = minio_location(devenv, cluster.workspace, minio_bucket)
    backup = real_backup(cluster, location, "to-download")
    viewer, operator = factories.user("viewer"), factories.user("operator")
    cluster.workspace.grant(Role.VIEWER, user=viewer)
    cluster.workspace.grant(Role.OPERATOR, user=operator)
    url = reverse("backup_download", args=[backup.pk])
    client.force_login(viewer)
    assert client.get(url).status_code == 403
    client.force_login(operator)
    response = client.get(url)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = b"".join(response.streaming_content)
    assert body[:2] == b"\x1f\x8b" and len(body) == backup.size_bytes
    event = AuditEvent.objects.get(action="downloaded")
    assert (event.actor, event.object_repr) == (operator, "to-download")
