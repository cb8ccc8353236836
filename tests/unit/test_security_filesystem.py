"""Critical finding: filesystem locations at any server path.

The attack: a workspace Admin (not a superuser) creates a local-directory
location at ``/``, ``/root`` or another workspace's folder, validation lists the
folders it finds, sync imports (and delete removes) the other workspace's
backups. Each way in (page, command, admin) and each use (provider) refuses it.
"""

from __future__ import annotations

import html
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from locations.models import BackupLocation
from locations.providers import Misconfigured, get_provider
from locations.providers.filesystem import FilesystemProvider
from locations.validation import validate
from tests import factories
from workspaces.roles import Role


@pytest.fixture
def roots(settings, tmp_path):
    """The server allows local locations under ``tmp_path/allowed`` only."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    settings.PALETTE_FILESYSTEM_ROOTS = [str(allowed)]
    return allowed


@pytest.fixture
def root_user(db):
    return factories.user("root", is_superuser=True, is_staff=True)


def text(response) -> str:
    return html.unescape(response.content.decode())


def form(world, path: str, name: str = "grab") -> dict:
    return {"name": name, "workspace": world.workspace.pk, "provider": "filesystem",
            "path": path, "action": "save", "save_unavailable": "on"}  # fmt: skip


def test_a_workspace_admin_cannot_create_a_local_location(world, login, roots):
    client = login(world.users["admin"])
    page = client.get(reverse("location_create")).content.decode()
    assert 'value="filesystem"' not in page  # not offered
    for path in ("/", "/root", str(roots / "mine")):
        response = client.post(reverse("location_create"), form(world, path))
        assert response.status_code == 200
        assert "Only a superuser may create or change a local-directory location" in text(response)
    assert not BackupLocation.objects.filter(name="grab").exists()


def test_a_workspace_admin_cannot_change_a_local_location(world, login, roots):
    location = factories.location(world.workspace, "local", path=str(roots / "payments"))
    client = login(world.users["admin"])
    data = form(world, "/root", name="local")
    response = client.post(reverse("location_edit", args=[location.pk]), data)
    assert "Only a superuser may create or change" in text(response)
    # Nor turn an object-store location into a local one.
    store = factories.location(world.workspace, "store", provider="minio", bucket="b",
                               endpoint_url="http://127.0.0.1:9")  # fmt: skip
    data = form(world, str(roots / "x"), name="store")
    response = client.post(reverse("location_edit", args=[store.pk]), data)
    assert "Only a superuser may create or change" in text(response)
    location.refresh_from_db()
    store.refresh_from_db()
    assert (location.path, store.provider) == (str(roots / "payments"), "minio")


def test_even_a_superuser_stays_under_the_roots(world, login, roots, root_user, tmp_path):
    client = login(root_user)
    outside = tmp_path / "outside"
    outside.mkdir()
    (roots / "link").symlink_to(outside)  # inside by name, outside for real
    for path, message in (
        ("/", "outside the directories this server allows"),
        ("/root", "outside the directories this server allows"),
        (str(roots / "link"), "outside the directories this server allows"),
        (f"{roots}/../outside", "must not contain '..'"),
    ):
        response = client.post(reverse("location_create"), form(world, path))
        assert response.status_code == 200, path
        assert message in text(response), path
    assert not BackupLocation.objects.filter(name="grab").exists()
    (roots / "payments").mkdir()
    response = client.post(reverse("location_create"), form(world, str(roots / "payments")))
    assert response.status_code == 302
    assert BackupLocation.objects.get(name="grab").status == BackupLocation.Status.AVAILABLE


def test_the_command_refuses_paths_outside_the_roots(db, roots, tmp_path):
    with pytest.raises(CommandError, match="outside the directories this server allows"):
        call_command("add_location", "grab", "--provider", "filesystem", "--path", "/root")
    with pytest.raises(CommandError, match="must not contain '..'"):
        call_command("add_location", "grab", "--provider", "filesystem",
                     "--path", f"{roots}/../{tmp_path.name}")  # fmt: skip
    assert not BackupLocation.objects.filter(name="grab").exists()
    (roots / "a").mkdir()
    call_command("add_location", "ok", "--provider", "filesystem", "--path", str(roots / "a"))
    with pytest.raises(CommandError, match="overlaps another backup location"):
        call_command("add_location", "nested", "--provider", "filesystem",
                     "--path", str(roots / "a" / "inner"))  # fmt: skip


def test_the_admin_refuses_staff_and_paths_outside_the_roots(world, client, roots, root_user):
    staff = factories.user("staff", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(*Permission.objects.filter(codename__endswith="backuplocation"))
    url = reverse("admin:locations_backuplocation_add")
    data = {"name": "grab", "provider": "filesystem", "path": "/root", "credential_mode": "none",
            "status": "unknown"}  # fmt: skip
    client.force_login(staff)
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Only a superuser may create or change" in text(response)
    client.force_login(root_user)
    response = client.post(url, data)
    assert "outside the directories this server allows" in text(response)
    assert not BackupLocation.objects.filter(name="grab").exists()
    response = client.post(url, {**data, "path": str(roots / "ok")})
    assert response.status_code == 302
    assert BackupLocation.objects.filter(name="grab").exists()


def test_no_two_locations_share_a_directory_across_workspaces(world, login, roots, root_user):
    theirs = factories.workspace("Theirs")
    factories.location(theirs, "their-store", path=str(roots / "theirs"))
    client = login(root_user)
    for path in (str(roots / "theirs"), str(roots / "theirs" / "backups"), str(roots)):
        response = client.post(reverse("location_create"), form(world, path))
        assert "overlaps another backup location" in text(response), path
        assert "their-store" not in text(response)  # not named to another tenant


def test_no_two_store_locations_share_objects(world, login):
    common = {"provider": "minio", "bucket": "shared", "endpoint_url": "http://127.0.0.1:19000"}
    theirs = factories.workspace("Theirs")
    factories.location(theirs, "their-store", prefix="velero", **common)
    admin = world.users["admin"]
    client = login(admin)
    base = {"name": "grab", "workspace": world.workspace.pk, "provider": "minio",
            "bucket": "shared", "endpoint_url": "http://127.0.0.1:19000/", "access_key": "a",
            "secret_key": "b", "action": "save", "save_unavailable": "on"}  # fmt: skip
    for prefix in ("", "velero", "velero/sub", "velero-etcd"):
        response = client.post(reverse("location_create"), {**base, "prefix": prefix})
        assert "overlaps another backup location" in text(response), prefix
    assert not BackupLocation.objects.filter(name="grab").exists()
    response = client.post(reverse("location_create"), {**base, "prefix": "velero2"})
    assert response.status_code == 302  # a sibling prefix shares nothing


def test_the_provider_refuses_a_directory_outside_the_roots_at_use(db, roots):
    """A row changed behind the console's back (or made before the roots) is refused
    by every use: validation, backup, restore, sync, delete and download all build
    their provider through get_provider."""
    location = factories.location(None, "old", path="/root")
    with pytest.raises(Misconfigured, match="outside the directories"):
        FilesystemProvider("/root")
    provider = get_provider(location)  # every use refuses; no page ends in a 500
    for use in (lambda: provider.list("backups/"), lambda: provider.get_bytes("x"),
                lambda: provider.put_bytes("x", b"x"), lambda: provider.delete_prefix("")):  # fmt: skip
        with pytest.raises(Misconfigured, match="outside the directories"):
            use()
    result = validate(location)
    assert not result.ok and "outside the directories" in result.message


def test_keys_and_prefixes_never_leave_the_directory(db, roots, tmp_path):
    victim = tmp_path / "victim"
    (victim / "backups" / "b1").mkdir(parents=True)
    (victim / "backups" / "b1" / "velero-backup.json").write_text("{}")
    location = factories.location(None, "mine", path=str(roots / "mine"))
    os.makedirs(location.path)
    provider = get_provider(location)
    os.symlink(victim, roots / "mine" / "escape")
    for attempt in (
        lambda: provider.delete_prefix("../../victim/"),
        lambda: provider.list_folders("../victim"),
        lambda: provider.get_bytes("escape/backups/b1/velero-backup.json"),
        lambda: provider.delete("escape/backups/b1/velero-backup.json"),
        lambda: provider.put_bytes("escape/backups/b1/x", b"x"),
        lambda: provider.delete_prefix("escape/"),
    ):
        with pytest.raises(Misconfigured):
            attempt()
    assert (victim / "backups" / "b1" / "velero-backup.json").exists()
    assert not (victim / "backups" / "b1" / "x").exists()


def test_validation_does_not_list_what_is_on_the_disk(db, roots):
    (roots / "mine" / "private-folder").mkdir(parents=True)
    location = factories.location(None, "mine", path=str(roots / "mine"))
    result = validate(location)
    assert result.ok
    assert "private-folder" not in " ".join([result.message, *result.warnings])
    assert "1 folder that Velero does not know" in result.warnings[0]


def test_a_workspace_admin_of_the_location_still_sees_it_and_validates_it(world, login, roots):
    location = factories.location(world.workspace, "shared-disk", path=str(roots / "p"))
    os.makedirs(location.path)
    world.workspace.grant(Role.ADMIN, user=world.users["operator"])
    client = login(world.users["operator"])
    response = client.post(reverse("location_validate", args=[location.pk]))
    assert response.status_code == 302
    location.refresh_from_db()
    assert location.status == BackupLocation.Status.AVAILABLE
