"""Volume options from commands and pages: bad input is a clean error, nothing is saved;
the recorder writes a volume's row and a hook's row; the sweep judges only its own jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backups.engine.volumes.hooks import HookReport
from backups.engine.volumes.records import VolumeEntry
from backups.engine_inputs import operation_label
from backups.jobs.volumes import VolumeRecorder, _over
from backups.models import Backup, HookResult, Restore, Status, VolumeResult
from tests import factories


@pytest.fixture
def setup(db):
    ws = factories.workspace("Vol")
    cluster = factories.cluster(ws, "c1")
    location = factories.location(ws, "disk")
    return ws, cluster, location


def test_backup_command_refuses_a_bad_volume_policy(setup):
    with pytest.raises(CommandError, match="--volume-policy: 'fast' is not one of"):
        call_command("backup", "c1", "--location", "disk", "--include-disks",
                     "--volume-policy", "local-path=fast")  # fmt: skip
    assert not Backup.objects.exists()


def test_backup_command_starts_a_backup_with_disks(setup, capsys):
    call_command("backup", "c1", "--location", "disk", "--include-disks", "--volume-mode", "copy",
                 "--volume-policy", "scratch=skip")  # fmt: skip
    backup = Backup.objects.get()
    assert backup.include_disks and backup.volume_mode == "copy"
    assert backup.volume_policy == {"scratch": "skip"}


def test_restore_command_refuses_a_bad_class_mapping(setup):
    _ws, cluster, location = setup
    backup = factories.backup(cluster, location, status=Status.COMPLETED)
    with pytest.raises(CommandError, match="--storage-class-mapping"):
        call_command("restore", backup.name, "--to", "c1", "--restore-pvs",
                     "--storage-class-mapping", "Bad=x")  # fmt: skip
    assert not Restore.objects.exists()
    call_command("restore", backup.name, "--to", "c1", "--restore-pvs",
                 "--storage-class-mapping", "local-path=fast")  # fmt: skip
    assert Restore.objects.get().storage_class_mapping == {"local-path": "fast"}


def test_the_recorder_keeps_one_row_per_volume_and_one_per_hook(setup):
    _ws, cluster, location = setup
    backup = factories.backup(cluster, location)
    recorder = VolumeRecorder("backup", backup)
    entry = VolumeEntry("ns", "data", method="copy", state="running", bytes_total=100,
                        started=datetime.now(UTC))  # fmt: skip
    recorder.volume(entry)
    entry.bytes_done, entry.state, entry.copy = 100, "succeeded", {"sha256": "a" * 64}
    entry.finished = datetime.now(UTC)
    recorder.volume(entry)
    row = VolumeResult.objects.get(backup=backup)
    assert (row.state, row.bytes_done, row.percent, row.copy_sha256) == (
        "succeeded", 100, 100, "a" * 64)  # fmt: skip
    recorder.hook(HookReport("ns", "p", "app", "pre-backup", '["sync"]', 0, "ok", True, True))
    assert HookResult.objects.get(backup=backup).exit_code == 0


def test_the_sweep_judges_only_finished_jobs_of_its_own(setup):
    _ws, cluster, location = setup
    running = factories.backup(cluster, location, status=Status.RUNNING)
    done = factories.backup(cluster, location, status=Status.FAILED)
    assert not _over(operation_label(running))
    assert _over(operation_label(done))
    # Another console sharing the cluster has its own backup with this pk, or none:
    # its mover pods are not ours to delete.
    assert not _over(f"backup-{done.pk}") and not _over(f"backup-{done.pk}-0123456789")
    assert not _over("backup-999999-0123456789")  # no such row here
    assert not _over("something-else") and not _over("restore-x")
    assert operation_label(done) != operation_label(factories.backup(cluster, location))


@pytest.mark.parametrize(
    ("persona", "status"),
    [("admin", 200), ("operator", 200), ("viewer", 200), ("cluster_grantee", 200),
     ("outsider", 404), ("anonymous", 302)],
)  # fmt: skip
def test_the_volume_and_hook_tables_show_to_whoever_sees_the_backup(world, login, persona, status):
    from django.urls import reverse

    backup, restore = world.backup, world.restore
    Backup.objects.filter(pk=backup.pk).update(include_disks=True)
    Restore.objects.filter(pk=restore.pk).update(restore_pvs=True)
    VolumeResult.objects.create(backup=backup, namespace="shop", claim="db-data", method="copy",
                                state="failed", reason="the mover image cannot be pulled")  # fmt: skip
    VolumeResult.objects.create(restore=restore, namespace="shop", claim="db-data",
                                method="snapshot", state="succeeded")  # fmt: skip
    HookResult.objects.create(backup=backup, namespace="shop", pod="db-0", phase="pre-backup",
                              command='["fsfreeze"]', exit_code=1, output="<b>busy</b>")  # fmt: skip
    client = login(world.users[persona])
    page = client.get(reverse("backup_detail", args=[backup.pk]))
    assert page.status_code == status
    if status == 200:
        text = page.content.decode()
        assert "shop/db-data" in text and "the mover image cannot be pulled" in text
        assert "Copy into the location" in text and "fsfreeze" in text
        assert "<b>busy</b>" not in text and "&lt;b&gt;busy&lt;/b&gt;" in text
        page = client.get(reverse("restore_detail", args=[restore.pk]))
        assert page.status_code == 200 and "CSI snapshot" in page.content.decode()
