"""Schedules with a controllable clock, workspace backups, and their skip records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from backups.models import Backup, BackupRun, Schedule
from backups.scheduling import backup_workspace, claim, tick
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration

SATURDAY_LATE = datetime(2026, 11, 28, 23, 58, tzinfo=UTC)
SUNDAY_MIDNIGHT = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


@pytest.fixture
def place(db, devenv, tmp_path):
    ws = factories.workspace("Demo")
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    healthy = Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )
    ghost = factories.cluster(ws, "ghost")  # its API server refuses connections
    location = factories.location(ws, "disk", path=str(tmp_path), is_default=True)
    return ws, healthy, ghost, location


def weekly(ws, location, cluster=None, now=SATURDAY_LATE) -> Schedule:
    schedule = Schedule(
        workspace=ws, cluster=cluster, prefix="weekly", location=location,
        preset=Schedule.Preset.WEEKLY, include_namespaces=["monitoring"],
    )  # fmt: skip
    schedule.plan_next(now)
    schedule.save()
    return schedule


def test_a_schedule_fires_at_its_times_and_only_then(place):
    ws, healthy, _, location = place
    schedule = weekly(ws, location, cluster=healthy)
    assert schedule.next_run_at == SUNDAY_MIDNIGHT
    assert tick(SATURDAY_LATE + timedelta(minutes=1)) == []
    runs = tick(SUNDAY_MIDNIGHT)
    assert len(runs) == 1
    assert [b.name for b in runs[0].backups.all()] == ["weekly-cluster-a-20261129000000"]
    assert tick(SUNDAY_MIDNIGHT + timedelta(seconds=30)) == []
    schedule.refresh_from_db()
    assert schedule.next_run_at == SUNDAY_MIDNIGHT + timedelta(days=7)
    assert "1 backup started" in schedule.last_result
    backup = Backup.objects.get()
    assert backup.schedule == schedule and backup.include_namespaces == ["monitoring"]


def test_a_schedule_skips_while_its_previous_backup_runs(place):
    ws, healthy, _, location = place
    schedule = weekly(ws, location, cluster=healthy)
    tick(SUNDAY_MIDNIGHT)  # its backup stays pending: no worker runs in this test
    runs = tick(SUNDAY_MIDNIGHT + timedelta(days=7))
    assert len(runs) == 1 and runs[0].backups.count() == 0
    assert "still running" in runs[0].skipped[0]["reason"]
    schedule.refresh_from_db()
    assert "Skipped" in schedule.last_result and "still running" in schedule.last_result
    assert Backup.objects.count() == 1


def test_only_one_of_two_tickers_claims_a_firing(place):
    ws, healthy, _, location = place
    weekly(ws, location, cluster=healthy)
    first, second = Schedule.objects.get(), Schedule.objects.get()  # both read the same row
    assert claim(first, SUNDAY_MIDNIGHT)
    assert not claim(second, SUNDAY_MIDNIGHT)


def test_paused_and_never_schedules_do_not_fire(place):
    ws, healthy, _, location = place
    paused = weekly(ws, location, cluster=healthy)
    Schedule.objects.filter(pk=paused.pk).update(paused=True)
    never = Schedule(workspace=ws, cluster=healthy, prefix="never", location=location,
                     preset=Schedule.Preset.NEVER)  # fmt: skip
    never.plan_next(SATURDAY_LATE)
    never.save()
    assert never.next_run_at is None
    assert tick(SUNDAY_MIDNIGHT + timedelta(days=30)) == []


def test_a_workspace_backup_skips_an_unreachable_cluster_and_says_why(place):
    ws, healthy, ghost, location = place
    run = backup_workspace(ws, location, prefix="ws", options={"include_namespaces": ["shop"]},
                           now=SUNDAY_MIDNIGHT)  # fmt: skip
    assert [b.cluster_name for b in run.backups.all()] == ["cluster-a"]
    assert run.skipped[0]["cluster"] == "ghost"
    assert "connection refused" in run.skipped[0]["reason"]
    ghost.refresh_from_db()
    assert ghost.health == Cluster.Health.UNREACHABLE


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_tickers_fire_once(devenv, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrent writers need PostgreSQL (make test runs this on it too)")
    ws = factories.workspace("Race")
    ghost = factories.cluster(ws, "ghost")
    location = factories.location(ws, "disk", path=str(tmp_path))
    weekly(ws, location, cluster=ghost)
    barrier = threading.Barrier(2)
    made = []

    def ticker():
        barrier.wait()
        made.extend(tick(SUNDAY_MIDNIGHT))
        connection.close()

    threads = [threading.Thread(target=ticker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert BackupRun.objects.count() == 1
