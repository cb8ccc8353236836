"""Protection on filesystem locations and in the database: sealing through the provider,
key rotation and its report, the settings' rules, early deletes refused with the date
(page, command, admin, expiry), and copies verified by checksum."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from backups import copies
from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import is_sealed
from backups.engine.velero.reader import Unreadable, read_json_gz
from backups.expiry import gc_backups
from backups.jobs import delete_backup
from backups.models import Backup, Status
from backups.sync import backup_from_document
from locations.forms import LocationForm
from locations.keys import LocationKey, report
from locations.models import BackupLocation
from locations.object_lock import Locked, ceil_second, retention_for
from locations.providers import get_provider
from tests import factories

ARCHIVE = b"\x1f\x8b\x08" + bytes(range(256)) * 9000  # > 2 MiB: several sealed chunks


def sealed_location(ws, tmp_path, name="sealed", **extra):
    path = tmp_path / name
    path.mkdir()
    return factories.location(ws, name, path=str(path), encrypt=True, **extra)


def write_backup(location, name: str, archive: bytes = ARCHIVE) -> None:
    layout, provider = Layout(location.prefix), get_provider(location)
    provider.put_bytes(layout.backup_file(name, "archive"), archive)
    provider.put_bytes(layout.backup_file(name, "metadata"), b'{"kind": "Backup"}')
    provider.close()


def on_disk(location, name: str, kind: str = "archive") -> bytes:
    from pathlib import Path

    return (Path(location.path) / Layout(location.prefix).backup_file(name, kind)).read_bytes()


# Sealing through the provider ---------------------------------------------------------


def test_an_encrypting_location_seals_on_disk_and_opens_on_read(world, tmp_path):
    location = sealed_location(world.workspace, tmp_path)
    write_backup(location, "b1")
    raw = on_disk(location, "b1")
    assert is_sealed(raw) and ARCHIVE[:64] not in raw
    assert b"Backup" not in on_disk(location, "b1", "metadata")
    provider = get_provider(location)
    assert provider.get_bytes(Layout("").backup_file("b1", "archive")) == ARCHIVE
    assert LocationKey.objects.filter(location=location).count() == 1
    # Validation and the tests look at the bucket itself.
    assert (
        get_provider(location, raw=True).get_bytes(Layout("").backup_file("b1", "archive")) == raw
    )


def test_rotation_seals_new_objects_with_the_new_key_and_old_ones_still_open(world, tmp_path):
    location = sealed_location(world.workspace, tmp_path)
    write_backup(location, "old")
    first = LocationKey.objects.get(location=location)
    out = io.StringIO()
    call_command("rotate_location_key", location.name, stdout=out)
    second = LocationKey.objects.get(location=location, retired_at__isnull=True)
    assert second.key_id in out.getvalue() and second != first
    write_backup(location, "new")
    assert second.key_id.encode() in on_disk(location, "new")[:64]
    assert first.key_id.encode() in on_disk(location, "old")[:64]
    provider = get_provider(location)
    for name in ("old", "new"):
        assert provider.get_bytes(Layout("").backup_file(name, "archive")) == ARCHIVE
    # Only the wrapped key is stored, never the data key in clear.
    assert len(first.wrapped) > 60 and first.wrapped_by == "console"


def test_the_key_report_says_which_backups_each_key_sealed(world, tmp_path):
    location = sealed_location(world.workspace, tmp_path)
    key = get_provider(location).key_id
    factories.backup(world.cluster, location, name="sealed-1", key_id=key)
    factories.backup(world.cluster, location, name="plain-1")
    rows = report(location)
    assert rows[0]["key"].key_id == key and rows[0]["backups"] == ["sealed-1"]
    assert rows[-1]["key"] is None and rows[-1]["backups"] == ["plain-1"]
    out = io.StringIO()
    call_command("location_keys", location.name, stdout=out)
    assert f"{key} (current" in out.getvalue() and "sealed-1" in out.getvalue()


def test_rotating_a_plain_location_is_refused(world):
    with pytest.raises(CommandError, match="does not encrypt"):
        call_command("rotate_location_key", world.location.name)


def test_velero_format_readers_say_the_object_is_encrypted(world, tmp_path):
    location = sealed_location(world.workspace, tmp_path)
    key = Layout("").backup_file("b1", "results")
    get_provider(location).put_bytes(key, b"\x1f\x8b whatever")
    with pytest.raises(Unreadable, match="encrypted by the console"):
        read_json_gz(get_provider(location, raw=True), key)
    with pytest.raises(ValueError, match="encrypted by the console"):
        backup_from_document(location, on_disk(location, "b1", "results"))


def test_a_sealed_archive_downloads_decrypted(world, tmp_path, login):
    location = sealed_location(world.workspace, tmp_path)
    write_backup(location, world.backup.name)
    Backup.objects.filter(pk=world.backup.pk).update(location=location)
    response = login(world.users["operator"]).get(
        reverse("backup_download", args=[world.backup.pk])
    )
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == ARCHIVE


# The settings' rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"provider": "gcs", "object_lock_mode": "compliance", "object_lock_days": 3},
         "object_lock_mode", "emulator"),
        ({"provider": "azure", "object_lock_mode": "governance", "object_lock_days": 3},
         "object_lock_mode", "Azurite"),
        ({"provider": "minio", "kms_key_id": "k", "encrypt": True}, "kms_key_id", "S3 locations"),
        ({"provider": "s3", "kms_key_id": "k"}, "kms_key_id", "encryption on"),
        ({"provider": "s3", "object_lock_mode": "compliance"}, "object_lock_days", "1 to"),
        ({"provider": "s3", "object_lock_days": 5}, "object_lock_mode", "compliance or"),
    ],
)  # fmt: skip
def test_protection_settings_that_cannot_work_are_refused(db, extra, field, words):
    location = BackupLocation(name="x", bucket="b", **extra)
    with pytest.raises(ValidationError) as caught:
        location.clean()
    assert words in " ".join(caught.value.message_dict[field])


def test_encryption_cannot_be_switched_after_creation(world):
    world.location.encrypt = True
    with pytest.raises(ValidationError, match="chosen when a location is created"):
        world.location.clean()


def test_the_form_warns_about_velero_and_disables_lock_where_it_cannot_work(db):
    form = LocationForm(initial={"provider": "gcs"})
    assert "Velero cannot read encrypted archives" in form.fields["encrypt"].help_text
    assert form.fields["object_lock_mode"].disabled
    assert "emulator" in form.fields["object_lock_mode"].help_text
    s3 = LocationForm(initial={"provider": "s3"})
    assert not s3.fields["object_lock_mode"].disabled and "kms_key_id" in s3.fields
    assert "kms_key_id" not in LocationForm(initial={"provider": "minio"}).fields


def test_add_location_takes_encrypt(world, tmp_path):
    call_command(
        "add_location", "enc-fs", "--provider", "filesystem", "--path", str(tmp_path),
        "--encrypt", stdout=io.StringIO(),
    )  # fmt: skip
    assert BackupLocation.objects.get(name="enc-fs").encrypt


# Object lock in the console ------------------------------------------------------------


def test_retention_dates_are_rounded_up_to_whole_seconds(db):
    location = BackupLocation(provider="minio", object_lock_mode="compliance", object_lock_days=2)
    start = datetime(2026, 1, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    retention = retention_for(location, start)
    assert retention.until == datetime(2026, 1, 3, 10, 0, 1, tzinfo=UTC)
    assert ceil_second(retention.until) == retention.until >= start + timedelta(days=2)
    assert retention_for(BackupLocation(provider="minio"), start) is None


@pytest.fixture
def locked(world, tmp_path):
    BackupLocation.objects.filter(pk=world.location.pk).update(path=str(tmp_path))
    world.location.refresh_from_db()  # the tests pass this row on: its path, not /tmp/backups
    until = ceil_second(timezone.now() + timedelta(days=2))
    Backup.objects.filter(pk=world.backup.pk).update(
        locked_until=until, expires_at=timezone.now() - timedelta(hours=1)
    )
    world.backup.refresh_from_db()
    return world, until


def test_an_early_delete_is_refused_with_the_date(locked, login):
    world, until = locked
    with pytest.raises(Locked, match=until.strftime("%Y-%m-%d")):
        delete_backup(world.backup)
    client = login(world.users["admin"])
    response = client.post(
        reverse("backup_delete", args=[world.backup.pk]), {"confirm_name": world.backup.name},
        follow=True,
    )  # fmt: skip
    assert (
        "locked" in response.content.decode()
        and until.strftime("%Y-%m-%d") in response.content.decode()
    )
    assert Backup.objects.filter(pk=world.backup.pk).exists()


def test_expiry_keeps_a_locked_backup_and_says_until_when(locked):
    world, until = locked
    result = gc_backups()
    assert world.backup.name in result.failed and world.backup.name not in result.deleted
    world.backup.refresh_from_db()
    assert "not deleted" in world.backup.error and until.strftime("%Y-%m-%d") in world.backup.error
    # Once the lock has ended, expiry deletes it.
    Backup.objects.filter(pk=world.backup.pk).update(locked_until=timezone.now())
    assert world.backup.name in gc_backups().deleted


def test_the_admin_refuses_an_early_delete(locked, client):
    world, until = locked
    client.force_login(factories.user("support", is_staff=True, is_superuser=True))
    url = reverse("admin:backups_backup_delete", args=[world.backup.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert until.strftime("%Y-%m-%d") in response.content.decode()
    client.post(
        reverse("admin:backups_backup_changelist"),
        {"action": "delete_selected", "_selected_action": [world.backup.pk], "post": "yes"},
    )
    assert Backup.objects.filter(pk=world.backup.pk).exists()


# Copies ---------------------------------------------------------------------------------


def test_a_copy_is_verified_and_listed_with_its_origin(world, tmp_path):
    source = sealed_location(world.workspace, tmp_path, "src")
    target = factories.location(world.workspace, "dst", path=str(tmp_path / "dst"))
    (tmp_path / "dst").mkdir()
    backup = factories.backup(world.cluster, source, name="to-copy")
    write_backup(source, "to-copy")
    copy = copies.copy_backup(backup, target)
    assert copy.status == Status.COMPLETED, copy.error
    assert (
        copy.location == target and copy.origin == "to-copy in src" and copy.copied_from == backup
    )
    assert on_disk(target, "to-copy") == ARCHIVE  # opened from the sealed source, plain here
    assert copy.key_id == "" and "SHA-256" in copy.log
    with pytest.raises(Exception, match="already holds"):
        copies.copy_backup(backup, target)


def test_a_copy_of_a_missing_backup_fails_with_the_reason(world, tmp_path):
    target = factories.location(world.workspace, "dst2", path=str(tmp_path / "dst"))
    (tmp_path / "dst").mkdir()
    BackupLocation.objects.filter(pk=world.location.pk).update(path=str(tmp_path))
    world.backup.refresh_from_db()
    copy = copies.copy_backup(world.backup, target)
    assert copy.status == Status.FAILED and "No objects" in copy.error


def test_the_copy_page_action_queues_a_copy(
    world, tmp_path, login, django_capture_on_commit_callbacks, monkeypatch
):
    target = factories.location(world.workspace, "dst3", path=str(tmp_path))
    queued = []
    monkeypatch.setattr("backups.tasks.run_copy.delay", queued.append)
    client = login(world.users["operator"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("backup_copy", args=[world.backup.pk]), {"location": target.pk}
        )
    copy = Backup.objects.get(location=target, name=world.backup.name)
    assert response.status_code == 302 and queued == [copy.pk]
    viewer = login(world.users["viewer"])
    assert (
        viewer.post(
            reverse("backup_copy", args=[world.backup.pk]), {"location": target.pk}
        ).status_code
        == 403
    )


def test_sync_keeps_a_locked_backup_whose_objects_are_hidden(locked):
    from backups.sync import sync_location

    world, _ = locked
    gone = factories.backup(world.cluster, world.location, name="gone-unlocked")
    result = sync_location(world.location)
    assert gone.name in result.removed and world.backup.name not in result.removed
    assert Backup.objects.filter(pk=world.backup.pk).exists()
