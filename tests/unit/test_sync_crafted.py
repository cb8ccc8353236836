"""A crafted velero-backup.json in a bucket: refused by the schema and skipped with the
reason, while the good backups beside it (and in other locations) are still imported."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from backups.models import Backup
from backups.sync import sync_location
from backups.tasks import sync_locations
from locations.models import BackupLocation
from tests import factories

pytestmark = pytest.mark.django_db


def velero_document(name: str, **changes) -> dict:
    """What Velero (and this console) writes, trimmed to typical fields."""
    doc = {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": name,
            "namespace": "velero",
            "labels": {"velero.io/storage-location": "default"},
            "annotations": {"velero.io/source-cluster-k8s-gitversion": "v1.31.2"},
        },
        "spec": {
            "includedNamespaces": ["*"],
            "excludedNamespaces": ["kube-*"],
            "ttl": "720h0m0s",
            "storageLocation": "default",
            "hooks": {},
        },
        "status": {
            "phase": "Completed",
            "startTimestamp": "2026-11-24T00:00:00Z",
            "completionTimestamp": "2026-11-24T00:01:00Z",
            "expiration": "2026-12-24T00:00:00Z",
            "progress": {"totalItems": 10, "itemsBackedUp": 10},
            "version": 1,
            "formatVersion": "1.1.0",
        },
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = doc
        for part in parents:
            target = target[part]
        target[last] = value
    return doc


LONG = "a" * 254  # one more than a Kubernetes name (a filesystem allows 255)
CRAFTED = {
    "negative-count": velero_document("negative-count", status__errors=-5),
    "negative-items": velero_document("negative-items", status__progress={"totalItems": -1}),
    "huge-count": velero_document("huge-count", status__warnings=10**30),
    "huge-ttl": velero_document("huge-ttl", status__expiration="99999-01-01T00:00:00Z"),
    "wrong-types": velero_document("wrong-types", spec__includedNamespaces="shop"),
    "string-count": velero_document("string-count", status__errors="3"),
    "null-metadata": {"metadata": None},
    "list-document": [1, 2, 3],
    "crlf-label": velero_document(
        "crlf-label", metadata__labels={"palette.io/cluster": "x\r\nforged: yes"}
    ),
    "long-version": velero_document(
        "long-version", metadata__annotations={"velero.io/source-cluster-k8s-gitversion": "v" * 300}
    ),
    "bad-sha": velero_document(
        "bad-sha", metadata__annotations={"palette.io/archive-sha256": "zz\n"}
    ),
}


def _write(root, prefix: str, folder: str, document) -> None:
    path = root / prefix / "backups" / folder
    path.mkdir(parents=True)
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    (path / "velero-backup.json").write_bytes(raw)


@pytest.fixture
def bucket(tmp_path, settings):
    settings.PALETTE_FILESYSTEM_ROOTS = [str(tmp_path)]
    ws = factories.workspace("home")
    factories.cluster(ws, "prod")
    loc = factories.location(ws, "crafted", path=str(tmp_path / "crafted"), prefix="velero")
    root = tmp_path / "crafted"
    _write(root, "velero", "good-prod-20261124000000", velero_document("good-prod-20261124000000"))
    for folder, document in CRAFTED.items():
        _write(root, "velero", folder, document)
    _write(root, "velero", LONG, velero_document(LONG))
    _write(root, "velero", "crlf", velero_document("crlf\r\nname"))
    _write(root, "velero", "newline-end", velero_document("newline-end\n"))
    _write(root, "velero", "not-json", b'{"metadata": ')
    _write(root, "velero", "too-big", b" " * (2 * 1024 * 1024))
    return loc


def test_crafted_documents_are_skipped_with_a_reason_and_good_ones_imported(bucket):
    result = sync_location(bucket)
    assert result.imported == ["good-prod-20261124000000"]
    expected = {*CRAFTED, LONG, "crlf", "newline-end", "not-json", "too-big"}
    assert set(result.skipped) == expected
    for name, reason in result.skipped.items():
        assert reason.startswith("unreadable velero-backup.json ("), (name, reason)
    assert "$.status.errors" in result.skipped["negative-count"]
    assert "1024 KiB" in result.skipped["too-big"]
    good = Backup.objects.get()
    assert (good.cluster_name, good.items_done, good.kubernetes_version) == ("prod", 10, "v1.31.2")


def test_the_command_reports_each_skipped_backup_on_one_line(bucket, capsys, tmp_path):
    _write(tmp_path / "crafted", "velero", "two\r\nlines", velero_document("x"))
    call_command("sync_location", "crafted")
    out = capsys.readouterr().out
    assert "1 backup imported" in out
    assert "skipped 'two\\r\\nlines'" in out
    assert not any(line.startswith("lines") for line in out.splitlines())


def test_the_periodic_sync_goes_on_to_the_next_location(bucket, tmp_path):
    second = factories.location(
        bucket.workspace, "second", path=str(tmp_path / "second"), prefix="velero"
    )
    _write(tmp_path / "second", "velero", "theirs-1", velero_document("theirs-1"))
    BackupLocation.objects.update(status=BackupLocation.Status.AVAILABLE)
    assert sync_locations() == 2
    assert set(Backup.objects.values_list("name", flat=True)) == {
        "good-prod-20261124000000",
        "theirs-1",
    }
    assert Backup.objects.get(name="theirs-1").location == second
