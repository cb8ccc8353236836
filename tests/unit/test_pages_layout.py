"""Styled error pages, the favicon, dates with their time zone, time estimates of
running jobs, checkboxes beside their labels, and "Run now" of a schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.staticfiles import finders
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.views import defaults

from backups.charts import line_chart, size_text
from backups.models import Backup, BackupRun, Status
from backups.scheduling import run_now
from workspaces.models import AuditEvent
from workspaces.templatetags.console import age, when


def test_404_and_403_are_the_consoles_own_pages(world, login):
    client = login(world.users["viewer"])
    missing = client.get("/backups/999999/")
    assert missing.status_code == 404
    assert b"console.css" in missing.content and b"Back to the dashboard" in missing.content
    refused = client.get(reverse("cluster_delete", args=[world.cluster.name]))
    assert refused.status_code == 403 and b"console.css" in refused.content
    assert b"Your role does not allow you to remove clusters." in refused.content


def test_500_is_styled_without_needing_a_context():
    response = defaults.server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b"console.css" in response.content


def test_pages_have_a_favicon(world, login):
    page = login(world.users["viewer"]).get(reverse("dashboard")).content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    assert finders.find("favicon.svg")


def test_dates_say_their_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    moment = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    with timezone.override("Europe/Paris"):
        text = when(moment)
    assert "2026-07-01 12:00 CEST" in text and 'datetime="2026-07-01T12:00:00+02:00"' in text
    assert when(None) == "—"


def test_ages_read_as_people_say_them():
    assert age(timedelta(hours=2)) == "2 h"
    assert age(timedelta(days=1)) == "1 d"
    assert age(timedelta(days=3, hours=5)) == "3 d 5 h"
    assert age(timedelta(seconds=75)) == "1 min 15 s"
    assert age(None) == "never"


def test_a_running_job_estimates_the_time_left(world):
    backup = world.backup
    backup.status, backup.finished_at = Status.RUNNING, None
    backup.started_at = timezone.now() - timedelta(seconds=60)
    backup.items_total, backup.items_done = 400, 100
    assert round(backup.remaining.total_seconds()) in (180, 181)  # 3 times as much again
    backup.items_done = 0
    assert backup.remaining is None  # no estimate before the first item
    backup.status = Status.COMPLETED
    assert backup.remaining is None


def test_the_backup_page_shows_elapsed_and_remaining(world, login):
    Backup.objects.filter(pk=world.backup.pk).update(
        status=Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=2),
        items_total=10,
        items_done=5,
    )
    page = login(world.users["viewer"]).get(world.backup.get_absolute_url()).content.decode()
    assert "running for 2 min" in page and "about 2 min left" in page


def test_checkboxes_sit_beside_their_labels(world, login):
    page = login(world.users["admin"]).get(reverse("backup_create", args=[world.cluster.name]))
    assert b'class="field checkbox"' in page.content


def test_a_chart_needs_two_points_and_keeps_time_on_its_x_axis():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(t0, 10), (t0 + timedelta(days=1), 20), (t0 + timedelta(days=3), 40)]
    chart = line_chart("Size", rows, when=lambda r: r[0], value=lambda r: r[1], fmt=size_text)
    xs = [d.x for d in chart.dots]
    assert xs[1] - xs[0] == pytest.approx((xs[2] - xs[1]) / 2, abs=0.2)  # 1 day, then 2
    assert chart.low == "10 B" and chart.high == "40 B"
    assert chart.dots[2].y < chart.dots[0].y  # larger is higher
    assert line_chart("x", rows[:1], when=lambda r: r[0], value=lambda r: r[1], fmt=str) is None


def test_run_now_fires_the_schedule_and_keeps_its_timetable(world):
    planned = timezone.now() + timedelta(days=2)
    world.schedule.next_run_at = planned
    world.schedule.save()
    run = run_now(world.schedule, world.users["operator"])
    assert isinstance(run, BackupRun) and run.created_by == world.users["operator"]
    # The world's cluster is unreachable: the run says so instead of making a backup.
    assert run.skipped and run.skipped[0]["cluster"] == world.cluster.name
    world.schedule.refresh_from_db()
    assert world.schedule.next_run_at == planned and world.schedule.last_run_at is not None
    assert AuditEvent.objects.filter(action="ran now", actor_name="operator").exists()
