"""A preview starts at most one restore, says which, and goes stale (issue #15's first bug):
going back to a confirmed preview and clicking Confirm again started a second restore."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backups.jobs import JobRefused, confirm_preview
from backups.jobs import restore as restore_jobs
from backups.models import Restore
from tests import factories


@pytest.fixture
def preview(world):
    """The world's restore as a finished preview with options worth copying."""
    Restore.objects.filter(pk=world.restore.pk).update(
        is_preview=True,
        status="completed",
        finished_at=timezone.now(),
        namespace_mapping={"shop": "shop-copy"},
        include_namespaces=["shop"],
        label_selector="app=shop",
        existing_policy="update",
        option_warnings=["shop-copy already holds objects."],
    )
    world.restore.refresh_from_db()
    return world.restore


def confirm(client, preview):
    return client.post(reverse("restore_confirm", args=[preview.pk]))


def test_it_starts_one_restore_for_two_confirms(world, login, preview):
    client = login(world.users["operator"])
    first = confirm(client, preview)
    second = confirm(client, preview)
    restores = Restore.objects.filter(from_preview=preview)
    assert restores.count() == 1
    restore = restores.get()
    assert first.url == second.url == restore.get_absolute_url()
    assert not restore.is_preview
    for name in restore_jobs.PREVIEW_OPTIONS:
        assert getattr(restore, name) == getattr(preview, name), name


def test_it_links_a_confirmed_preview_to_its_restore_and_offers_no_confirm(world, login, preview):
    client = login(world.users["operator"])
    confirm(client, preview)
    restore = Restore.objects.get(from_preview=preview)
    page = client.get(preview.get_absolute_url()).content.decode()
    assert restore.get_absolute_url() in page
    assert "cannot be confirmed again" in page
    assert reverse("restore_confirm", args=[preview.pk]) not in page
    # The polled fragment says the same (a page left open while someone else confirms).
    status = client.get(reverse("restore_status", args=[preview.pk])).content.decode()
    assert restore.get_absolute_url() in status and "Confirm:" not in status
    # And the restore points back at its preview.
    assert preview.get_absolute_url() in client.get(restore.get_absolute_url()).content.decode()


def test_it_survives_a_race_between_two_confirms(world, preview, monkeypatch):
    """Two requests both see "not confirmed yet": the unique column stops the second."""
    operator = world.users["operator"]
    restore, started = confirm_preview(preview, by=operator)
    assert started
    monkeypatch.setattr(restore_jobs, "confirmed_restore", lambda p: None)
    again, started = confirm_preview(preview, by=operator)
    assert (again.pk, started) == (restore.pk, False)
    assert Restore.objects.filter(is_preview=False, backup=world.backup).count() == 1


def test_it_marks_an_old_preview_stale_and_runs_it_again(world, login, preview):
    Restore.objects.filter(pk=preview.pk).update(finished_at=timezone.now() - timedelta(minutes=61))
    client = login(world.users["operator"])
    response = confirm(client, preview)
    assert response.status_code == 302 and response.url == preview.get_absolute_url()
    assert not Restore.objects.filter(from_preview=preview).exists()
    page = client.get(preview.get_absolute_url()).content.decode()
    assert "Stale preview" in page and "60 minutes" in page
    assert reverse("restore_rerun", args=[preview.pk]) in page
    assert "Confirm:" not in page
    fresh_url = client.post(reverse("restore_rerun", args=[preview.pk])).url
    fresh = Restore.objects.exclude(pk=preview.pk).get(is_preview=True)
    assert fresh_url == fresh.get_absolute_url()
    assert fresh.status == "pending" and fresh.namespace_mapping == {"shop": "shop-copy"}


def test_it_marks_a_preview_stale_after_a_newer_restore_into_its_cluster(world, preview):
    other = factories.restore(world.backup, world.cluster, status="completed")
    Restore.objects.filter(pk=other.pk).update(created_at=timezone.now() + timedelta(seconds=1))
    assert other.name in restore_jobs.stale_reason(preview)
    with pytest.raises(JobRefused, match="Run the preview again"):
        confirm_preview(preview, by=world.users["operator"])


def test_a_restore_into_another_cluster_leaves_the_preview_fresh(world, preview):
    elsewhere = factories.cluster(world.workspace)
    factories.restore(world.backup, elsewhere, status="completed")
    assert restore_jobs.stale_reason(preview) == ""


@pytest.mark.parametrize("status", ["pending", "running", "failed", "cancelled"])
def test_it_refuses_a_preview_that_did_not_finish_well(world, preview, status):
    Restore.objects.filter(pk=preview.pk).update(status=status)
    preview.refresh_from_db()
    with pytest.raises(JobRefused):
        confirm_preview(preview, by=world.users["operator"])


def test_it_refuses_to_confirm_a_restore(world, preview):
    restore, _ = confirm_preview(preview, by=world.users["operator"])
    with pytest.raises(JobRefused, match="not a preview"):
        confirm_preview(restore, by=world.users["operator"])


def test_a_viewer_may_neither_confirm_nor_run_again(world, login, preview):
    client = login(world.users["viewer"])
    assert confirm(client, preview).status_code == 403
    assert client.post(reverse("restore_rerun", args=[preview.pk])).status_code == 403
    assert Restore.objects.count() == 1
