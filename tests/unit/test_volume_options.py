"""Volume options from commands and pages: bad input is a clean error, nothing is saved;
the recorder writes a volume's row and a hook's row; the sweep judges only its own jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backups.engine.volumes.hooks import HookReport
from backups.engine.volumes.records import VolumeEntry
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
    assert not _over(f"backup-{running.pk}")
    assert _over(f"backup-{done.pk}")
    assert _over("backup-999999")  # its row is gone
    assert not _over("something-else") and not _over("restore-x")
