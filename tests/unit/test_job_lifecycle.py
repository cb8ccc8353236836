"""The lifecycle every job kind shares (backups/jobs/): failing at once with the
reason, reaping rows whose worker or message was lost, cancelling, and the
pages' status and Cancel button. The engines run for real (against an
unreachable cluster and a local directory); no part is replaced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backups.jobs import JOBS, JobRefused, reap
from backups.models import Status
from locations.models import BackupLocation
from workspaces.models import AuditEvent

KINDS = sorted(JOBS)


def row_of(world, kind: str):
    """The world's row of ``kind``, pending (as right after it was started)."""
    row = {
        "backup": world.backup,
        "restore": world.restore,
        "etcd_snapshot": world.snapshot,
        "etcd_restore": world.etcd_restore,
    }[kind]
    JOBS[kind].model.objects.filter(pk=row.pk).update(status=Status.PENDING)
    row.refresh_from_db()
    return row


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


@pytest.fixture
def local_store(world, tmp_path):
    BackupLocation.objects.filter(pk=world.location.pk).update(path=str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("kind", KINDS)
def test_a_location_whose_provider_cannot_be_built_fails_the_row_at_once(world, kind):
    """The provider is built inside the job's one try: the row does not stay running."""
    BackupLocation.objects.filter(pk=world.location.pk).update(path="relative/dir")
    row = row_of(world, kind)
    assert JOBS[kind].run(row.pk) == Status.FAILED
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.finished_at is not None
    assert "The location cannot be used" in row.error and "absolute path" in row.error


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("backup", "connection refused"),
        ("etcd_snapshot", "connection refused"),
        ("restore", "is not in the location"),  # its backup's archive is not there
    ],
)
def test_a_bad_cluster_or_backup_fails_the_row_at_once_with_the_reason(
    world, local_store, kind, reason
):
    row = row_of(world, kind)
    JOBS[kind].run(row.pk)
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert reason in row.error


@pytest.mark.parametrize(
    "kind, gone, reason",
    [
        ("backup", "cluster", "cluster was removed"),
        ("restore", "target_cluster", "target cluster was removed"),
        ("etcd_snapshot", "cluster", "cluster was removed"),
        ("etcd_restore", "snapshot", "snapshot was deleted"),
    ],
)
def test_a_job_whose_inputs_are_gone_fails_with_the_reason(world, kind, gone, reason):
    row = row_of(world, kind)
    JOBS[kind].model.objects.filter(pk=row.pk).update(**{gone: None})
    assert JOBS[kind].run(row.pk) == Status.FAILED
    row.refresh_from_db()
    assert reason in row.error


@pytest.mark.parametrize("kind", KINDS)
def test_a_row_whose_worker_died_is_failed_by_one_reaper_pass(world, kind):
    row = row_of(world, kind)
    JOBS[kind].model.objects.filter(pk=row.pk).update(
        status=Status.RUNNING, heartbeat_at=ago(600), started_at=ago(700)
    )
    assert reap() >= 1
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert "stopped reporting progress" in row.error


@pytest.mark.parametrize("kind", KINDS)
def test_a_lost_message_is_queued_again_once_then_failed(
    world, kind, settings, django_capture_on_commit_callbacks
):
    row = row_of(world, kind)
    model = JOBS[kind].model
    model.objects.filter(pk=row.pk).update(created_at=ago(settings.OPERATION_PENDING_TIMEOUT + 1))
    with django_capture_on_commit_callbacks() as queued:
        reap()
    row.refresh_from_db()
    assert row.status == Status.PENDING and row.requeued_at is not None
    assert len(queued) == 1  # sent again, once
    with django_capture_on_commit_callbacks() as queued:
        reap()  # still within the second wait: nothing more
    assert not queued and model.objects.get(pk=row.pk).status == Status.PENDING
    model.objects.filter(pk=row.pk).update(requeued_at=ago(settings.OPERATION_PENDING_TIMEOUT + 1))
    with django_capture_on_commit_callbacks() as queued:
        reap()
    row.refresh_from_db()
    assert not queued
    assert row.status == Status.FAILED and "queued twice" in row.error


@pytest.mark.parametrize(
    "busy",
    [
        {"status": Status.RUNNING, "heartbeat_at": 0},  # working on one now
        {"status": Status.COMPLETED, "started_at": 0},  # took one a moment ago
    ],
)
def test_a_long_queue_behind_busy_workers_is_not_failed(world, busy):
    """Workers moving through the queue explain an unclaimed row: it waits."""
    pending = row_of(world, "backup")
    type(pending).objects.filter(pk=pending.pk).update(created_at=ago(900), requeued_at=ago(600))
    other = row_of(world, "etcd_snapshot")
    when = {k: ago(v) for k, v in busy.items() if k != "status"}
    type(other).objects.filter(pk=other.pk).update(status=busy["status"], **when)
    reap()
    pending.refresh_from_db()
    assert pending.status == Status.PENDING
    type(other).objects.filter(pk=other.pk).update(
        status=Status.FAILED, started_at=ago(900), heartbeat_at=ago(900)
    )
    reap()  # the workers have been idle for long: now it fails
    pending.refresh_from_db()
    assert pending.status == Status.FAILED


@pytest.mark.parametrize("kind", KINDS)
def test_a_pending_job_cancelled_ends_at_once_and_never_runs(world, kind):
    row = row_of(world, kind)
    job = JOBS[kind]
    assert "before it started" in job.cancel(row, by=world.users["admin"])
    row.refresh_from_db()
    assert row.status == Status.CANCELLED and row.finished_at is not None
    assert job.run(row.pk) == "skipped"
    assert AuditEvent.objects.filter(action="cancelled", object_id=str(row.pk)).exists()
    with pytest.raises(JobRefused, match="already ended"):
        job.cancel(row)


@pytest.mark.parametrize("kind", ["backup", "restore", "etcd_snapshot"])
def test_a_running_job_cancelled_stops_at_its_first_safe_point(world, local_store, kind):
    """The cancel request is on the row before the work starts: the job stops at
    its first check, writes nothing, and ends cancelled."""
    row = row_of(world, kind)
    job = JOBS[kind]
    row.claim("test")
    assert "next safe point" in job.cancel(row, by=world.users["admin"])
    assert not job.may_cancel(world.users["admin"], row)  # asked once
    assert job(row).execute() == Status.CANCELLED
    row.refresh_from_db()
    assert "Cancel requested by admin" in row.log
    assert not any(local_store.rglob("*.*"))


def test_a_running_etcd_restore_cannot_be_cancelled(world):
    row = row_of(world, "etcd_restore")
    row.claim("test")
    assert not JOBS["etcd_restore"].may_cancel(world.users["admin"], row)
    with pytest.raises(JobRefused, match="cannot be stopped midway"):
        JOBS["etcd_restore"].cancel(row)
    row.refresh_from_db()
    assert row.status == Status.RUNNING


@pytest.mark.parametrize(
    "persona, expected", [("operator", 302), ("viewer", 403), ("outsider", 404)]
)
def test_the_cancel_button_is_for_who_may_start_the_job(world, login, persona, expected):
    row = row_of(world, "backup")
    client = login(world.users[persona])
    page = client.get(reverse("backup_detail", args=[row.pk]))
    if expected != 404:
        shown = reverse("job_cancel", args=["backup", row.pk]) in page.content.decode()
        assert shown == (expected == 302)
    response = client.post(reverse("job_cancel", args=["backup", row.pk]))
    assert response.status_code == expected
    row.refresh_from_db()
    assert (row.status == Status.CANCELLED) == (expected == 302)


def test_cancel_only_posts_and_only_known_kinds(world, login):
    client = login(world.users["admin"])
    assert client.get(reverse("job_cancel", args=["backup", world.backup.pk])).status_code == 405
    assert client.post(reverse("job_cancel", args=["nothing", 1])).status_code == 404


@pytest.mark.parametrize(
    "kind, url",
    [
        ("backup", "backup_status"),
        ("restore", "restore_status"),
        ("etcd_snapshot", "etcd_snapshot_status"),
        ("etcd_restore", "etcd_restore_detail"),
    ],
)
def test_a_status_fragment_stops_polling_once_the_job_ended(world, login, kind, url):
    row = row_of(world, kind)
    client = login(world.users["viewer"])
    polled = client.get(reverse(url, args=[row.pk]), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "every 1s" in polled.content.decode()
    JOBS[kind].cancel(row)
    done = client.get(reverse(url, args=[row.pk]), HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and "Cancelled" in done.content.decode()


def test_staff_can_cancel_and_fail_every_kind_from_the_admin(world, client):
    from tests import factories

    client.force_login(factories.user("support", is_staff=True, is_superuser=True))
    for kind in KINDS:
        row = row_of(world, kind)
        meta = JOBS[kind].model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        client.post(url, {"action": "cancel", "_selected_action": [row.pk]})
        row.refresh_from_db()
        assert row.status == Status.CANCELLED, kind


def test_a_failed_heartbeat_write_does_not_end_the_heartbeat(settings):
    """A locked table or a dropped connection costs one beat, not every later one (the
    reaper would then fail a long job that is still running)."""
    import time
    from unittest import mock

    from django.db import DatabaseError

    from backups.jobs.base import heartbeat

    settings.OPERATION_HEARTBEAT_TIMEOUT = 0.2  # a beat every 0.05 s
    row = mock.Mock(pk=1, _meta=mock.Mock(model_name="backup"))
    row.beat.side_effect = [DatabaseError("database table is locked")] + [None] * 1000
    with heartbeat(row):
        deadline = time.monotonic() + 10
        while row.beat.call_count < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert row.beat.call_count >= 3
