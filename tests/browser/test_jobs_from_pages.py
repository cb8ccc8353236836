"""A person cancels a running backup from its page, and runs a schedule now from the
Schedules list: real jobs of cluster A, on a real Celery worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.utils import timezone

from backups.jobs import BackupJob
from backups.models import Backup, Schedule, Status
from tests import factories
from tests.factories import PASSWORD
from workspaces.kube import flatten_kubeconfig
from workspaces.models import AuditEvent, Cluster
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def place(devenv, tmp_path):
    operator = factories.user("ops")
    ws = factories.workspace("Demo")
    ws.grant(Role.OPERATOR, user=operator)
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    cluster = Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )
    loc = factories.location(ws, "disk", path=str(tmp_path), is_default=True)
    return {"cluster": cluster, "location": loc, "tmp": tmp_path}


@pytest.fixture
def slow_backups(monkeypatch):
    """The real backup, with each progress step held back a little, so that a person
    has the time to press Cancel while it runs (the engine's own safe points stop it)."""
    original = BackupJob.progress

    def held_back(self, done, total, phase):
        time.sleep(0.25)
        original(self, done, total, phase)

    monkeypatch.setattr(BackupJob, "progress", held_back)
    monkeypatch.setattr(BackupJob, "stop_check_every", 0.0)


def test_a_running_backup_is_cancelled_from_its_page(
    page, log_in, place, worker, slow_backups
):  # fmt: skip
    log_in("ops", PASSWORD)
    page.goto("/clusters/cluster-a/backups/new/")
    page.click("button:has-text('Start backup')")
    page.wait_for_selector("#progress .badge-running", timeout=30_000)
    assert "running for" in page.inner_text("#progress")  # elapsed time is shown
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#progress button:has-text('Cancel')")
    page.wait_for_selector("#progress .badge-cancelled", timeout=60_000)
    backup = Backup.objects.get()
    assert backup.status == Status.CANCELLED
    assert not any(place["tmp"].rglob(f"{backup.name}.tar.gz"))  # nothing half-written left
    assert page.locator("#progress button:has-text('Cancel')").count() == 0


def test_a_schedule_runs_now_from_the_schedules_list(page, log_in, place, worker):
    later = timezone.now() + timezone.timedelta(days=3)
    schedule = Schedule.objects.create(
        workspace=place["cluster"].workspace,
        cluster=place["cluster"],
        prefix="nightly",
        location=place["location"],
        preset=Schedule.Preset.CUSTOM,
        cron="0 2 * * *",
        next_run_at=later,
        include_namespaces=["shop"],
    )
    log_in("ops", PASSWORD)
    page.goto("/schedules/")
    row = page.locator("#schedules tr[data-schedule='nightly']")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Run now')").click()
    page.wait_for_selector(".flash-success:has-text('started 1 backup')")
    page.click("a:has-text('nightly-cluster-a-')")
    page.wait_for_selector("#progress .badge-completed", timeout=60_000)
    backup = Backup.objects.get()
    assert backup.schedule_id == schedule.pk and backup.include_namespaces == ["shop"]
    assert backup.created_by.username == "ops"
    schedule.refresh_from_db()
    assert schedule.next_run_at == later  # the timetable is unchanged
    assert AuditEvent.objects.filter(action="ran now", actor_name="ops").exists()
