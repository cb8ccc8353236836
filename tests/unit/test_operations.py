"""The job shape shared by backups, restores and snapshots."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from backups.models import Backup, Status
from backups.tasks import fail_stale_operations


def test_only_one_worker_claims_a_job(world):
    backup = world.backup
    Backup.objects.filter(pk=backup.pk).update(status=Status.PENDING)
    first, second = Backup.objects.get(pk=backup.pk), Backup.objects.get(pk=backup.pk)
    assert first.claim("worker-1")
    assert not second.claim("worker-2")
    backup.refresh_from_db()
    assert backup.status == Status.RUNNING and backup.worker == "worker-1"


def test_progress_and_log_are_saved_while_running(world):
    backup = world.backup
    Backup.objects.filter(pk=backup.pk).update(status=Status.PENDING)
    backup.refresh_from_db()
    backup.claim("w")
    backup.beat(items_done=5, items_total=20, phase="Listing")
    backup.append_log("listed configmaps")
    backup.append_log("listed secrets")
    backup.refresh_from_db()
    assert (backup.items_done, backup.progress_percent, backup.phase) == (5, 25, "Listing")
    assert backup.log == "listed configmaps\nlisted secrets\n"


def test_a_finished_job_is_not_finished_again(world):
    backup = world.backup
    Backup.objects.filter(pk=backup.pk).update(status=Status.RUNNING)
    backup.refresh_from_db()
    assert backup.mark_failed("Marked failed by support")
    assert not backup.finish(Status.COMPLETED)
    backup.refresh_from_db()
    assert backup.status == Status.FAILED and "support" in backup.error


def test_a_job_whose_worker_died_is_failed_with_a_reason(world):
    backup = world.backup
    stale = timezone.now() - timedelta(minutes=10)
    Backup.objects.filter(pk=backup.pk).update(status=Status.RUNNING, heartbeat_at=stale)
    fresh = Backup.objects.create(
        name="alive", workspace=backup.workspace, cluster=backup.cluster,
        cluster_name="x", location=backup.location, status=Status.RUNNING,
        heartbeat_at=timezone.now(),
    )  # fmt: skip
    assert fail_stale_operations() == 1
    backup.refresh_from_db()
    fresh.refresh_from_db()
    assert backup.status == Status.FAILED
    assert "stopped reporting progress" in backup.error
    assert fresh.status == Status.RUNNING
