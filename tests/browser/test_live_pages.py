"""Pages that watch a job update themselves when it ends (issue #15's live-page bugs):
the actions, the expiry and the etcd runbook appear without a reload, the workspace
backup-run page follows its backups, and "Validate now" can be used again and again.

The jobs here are rows whose end the test writes itself (no worker, no cluster): what is
under test is the page, which only ever reads the row."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from backups.models import Backup, BackupRun, EtcdSnapshot, Restore
from tests import factories
from tests.factories import PASSWORD
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setting(tmp_path):
    admin = factories.user(f"live-{tmp_path.name[-12:]}")
    ws = factories.workspace()
    ws.grant(Role.ADMIN, user=admin)
    cluster = factories.cluster(ws)
    location = factories.location(ws, path=str(tmp_path))
    return admin, ws, cluster, location


def shot(page, name: str) -> None:
    """With PALETTE_SCREENSHOTS_DIR set, keep a picture of the page's end state."""
    if folder := os.environ.get("PALETTE_SCREENSHOTS_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"live-{name}.png"), full_page=True)


def finish(model, pk: int, **fields) -> None:
    model.objects.filter(pk=pk).update(
        status="completed", finished_at=timezone.now(), items_done=3, items_total=3, **fields
    )


def test_a_backup_that_ends_while_watched_shows_its_actions_and_expiry(page, log_in, setting):
    admin, ws, cluster, location = setting
    backup = factories.backup(
        cluster, location, status="running", started_at=timezone.now(), expires_at=None
    )
    log_in(admin.username, PASSWORD)
    page.goto(backup.get_absolute_url())
    page.wait_for_selector("#progress .badge-running")
    assert page.locator("#job-actions a").count() == 0
    expires = timezone.now() + timedelta(days=30)
    finish(Backup, backup.pk, expires_at=expires)
    page.wait_for_selector("#job-actions a:has-text('Restore')", timeout=20_000)
    actions = page.inner_text("#job-actions")
    assert "Download" in actions and "Delete" in actions
    page.wait_for_function(
        "year => document.querySelector('#job-expiry').textContent.includes(year)",
        arg=f"{timezone.localtime(expires):%Y-%m-%d}",
    )
    assert "after it starts" not in page.inner_text("#job-expiry")
    shot(page, "backup-finished")


def test_an_etcd_snapshot_that_ends_while_watched_shows_its_runbook(page, log_in, setting):
    admin, ws, cluster, location = setting
    snapshot = factories.snapshot(cluster, location, status="running", started_at=timezone.now())
    log_in(admin.username, PASSWORD)
    page.goto(snapshot.get_absolute_url())
    page.wait_for_selector("#progress .badge-running")
    assert page.locator("#runbook h2").count() == 0
    finish(EtcdSnapshot, snapshot.pk, sha256="0" * 64, size_bytes=1024, revision=7)
    page.wait_for_selector("#runbook h2:has-text('Restoring from this snapshot')", timeout=20_000)
    page.wait_for_selector("#job-actions a:has-text('Download')")
    assert page.locator("#runbook button.copy").count() >= 1
    shot(page, "etcd-runbook")


def test_the_workspace_backup_run_page_follows_its_backups(page, log_in, setting):
    admin, ws, cluster, location = setting
    run = BackupRun.objects.create(workspace=ws, started_at=timezone.now())
    backup = factories.backup(cluster, location, status="running", run=run)
    log_in(admin.username, PASSWORD)
    page.goto(f"/runs/{run.pk}/")
    page.wait_for_selector("#run-live .badge-running")
    finish(Backup, backup.pk)
    page.wait_for_selector("#run-live .badge-completed", timeout=20_000)


def test_validate_now_can_be_used_more_than_once(page, log_in, setting):
    admin, ws, cluster, location = setting
    log_in(admin.username, PASSWORD)
    page.goto(location.get_absolute_url())
    for _ in range(3):
        page.click("#status button:has-text('Validate now')")
        page.wait_for_selector("#status button:has-text('Validate now'):enabled")
    location.refresh_from_db()
    assert location.last_validated_at is not None
    assert location.status == "available"


def test_a_confirmed_preview_cannot_be_confirmed_twice(page, log_in, setting):
    """The bug: confirm, go back to the preview, confirm again: two real restores."""
    admin, ws, cluster, location = setting
    backup = factories.backup(cluster, location)
    preview = factories.restore(
        backup, cluster, is_preview=True, status="completed", finished_at=timezone.now()
    )
    log_in(admin.username, PASSWORD)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(preview.get_absolute_url())
    page.click("button:has-text('Confirm: restore into')")
    page.wait_for_selector(f"h1:has-text('Restore {backup.name}')")
    restore = Restore.objects.get(from_preview=preview)
    page.go_back()
    button = page.locator("button:has-text('Confirm: restore into')")
    if button.count():  # the browser showed its cached copy of the preview
        button.click()
        page.wait_for_selector(f"h1:has-text('Restore {restore.name}')")
    assert Restore.objects.filter(backup=backup, is_preview=False).count() == 1
    page.goto(preview.get_absolute_url())
    page.wait_for_selector(f"#confirmed a:has-text('{restore.name}')")
    assert page.locator("button:has-text('Confirm: restore into')").count() == 0
    shot(page, "confirmed-preview")
