"""Downloads of archives and etcd snapshots (every Secret in clear): only with the
download action, audited, never cached, with a safe file name."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.urls import reverse
from guardian.shortcuts import remove_perm

from backups.engine.storage.layout import Layout
from backups.models import Backup, EtcdSnapshot
from locations.models import BackupLocation
from workspaces.access import can
from workspaces.models import AuditEvent
from workspaces.roles import Action

ARCHIVE = b"\x1f\x8b not really a tarball, but bytes that must arrive intact"
SNAPSHOT = b"etcd snapshot bytes"


@pytest.fixture
def stored(world, tmp_path, settings):
    """The world's backup and snapshot, really written to a filesystem location."""
    settings.PALETTE_FILESYSTEM_ROOTS = [str(tmp_path)]
    BackupLocation.objects.filter(pk=world.location.pk).update(path=str(tmp_path), prefix="")
    archive = tmp_path / Layout("").backup_file(world.backup.name, "archive")
    archive.parent.mkdir(parents=True)
    archive.write_bytes(ARCHIVE)
    key = f"etcd-snapshots/{world.cluster.name}/{world.snapshot.name}.db"
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(SNAPSHOT)
    EtcdSnapshot.objects.filter(pk=world.snapshot.pk).update(
        object_key=key, status="completed", size_bytes=len(SNAPSHOT)
    )
    Backup.objects.filter(pk=world.backup.pk).update(size_bytes=len(ARCHIVE))
    return world


def _urls(world):
    return {
        "archive": (reverse("backup_download", args=[world.backup.pk]), ARCHIVE),
        "snapshot": (reverse("etcd_snapshot_download", args=[world.snapshot.pk]), SNAPSHOT),
    }


@pytest.mark.parametrize("what", ["archive", "snapshot"])
def test_an_operator_downloads_and_it_is_audited(stored, login, what):
    url, body = _urls(stored)[what]
    response = login(stored.users["operator"]).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == body
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    event = AuditEvent.objects.get(action="downloaded")
    assert event.actor == stored.users["operator"]
    assert event.workspace == stored.workspace


@pytest.mark.parametrize("what", ["archive", "snapshot"])
def test_a_viewer_is_refused_and_nothing_is_sent(stored, login, what):
    url, body = _urls(stored)[what]
    response = login(stored.users["viewer"]).get(url)
    assert response.status_code == 403
    assert body not in response.content
    assert b"does not allow you to download" in response.content
    assert not AuditEvent.objects.filter(action="downloaded").exists()


@pytest.mark.parametrize("what", ["archive", "snapshot"])
def test_an_outsider_does_not_learn_it_exists(stored, login, what):
    url, _ = _urls(stored)[what]
    assert login(stored.users["outsider"]).get(url).status_code == 404


def test_a_viewer_is_not_offered_the_download_button(stored, login):
    for persona, shown in (("viewer", False), ("operator", True)):
        client = login(stored.users[persona])
        page = client.get(reverse("backup_detail", args=[stored.backup.pk])).content
        assert (reverse("backup_download", args=[stored.backup.pk]).encode() in page) is shown
        page = client.get(reverse("etcd_snapshot_detail", args=[stored.snapshot.pk])).content
        url = reverse("etcd_snapshot_download", args=[stored.snapshot.pk]).encode()
        assert (b'class="button" href="' + url in page) is shown


def test_the_migration_gives_existing_operators_the_download_action(world):
    grant_download = __import__(
        "workspaces.migrations.0003_download_permission", fromlist=["grant_download"]
    ).grant_download
    operator, ws = world.users["operator"], world.workspace
    remove_perm("download_workspace", operator, ws)
    viewers = world.users["viewer"].groups.get()
    assert not can(operator, Action.DOWNLOAD, ws)
    grant_download(apps, None)
    assert can(operator, Action.DOWNLOAD, ws)
    assert can(world.users["admin"], Action.DOWNLOAD, ws)
    assert not can(world.users["viewer"], Action.DOWNLOAD, ws), viewers
