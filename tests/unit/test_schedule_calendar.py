"""The calendar is a paged week or month that says what it leaves out (it used to stop
silently after 400 runs and be 5,600 px tall)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backups import timetable
from backups.models import Schedule
from tests import factories


@pytest.fixture
def hourly(world, settings):
    settings.MIN_SCHEDULE_INTERVAL = timedelta(hours=1)
    return Schedule.objects.create(
        workspace=world.workspace, cluster=world.cluster, prefix="hourly",
        location=world.location, preset=Schedule.Preset.CUSTOM, cron="0 * * * *",
    )  # fmt: skip


def test_a_week_of_an_hourly_schedule_lists_a_few_runs_a_day_and_counts_the_rest(
    world, login, hourly
):
    start = timezone.localdate() + timedelta(days=14)
    page = login(world.users["admin"]).get(
        reverse("schedule_calendar"), {"view": "week", "start": start.isoformat()}
    )
    period = page.context["period"]
    assert len(period.days) == 7 and period.start.weekday() == 0
    day = period.days[3]
    assert len(day.runs) == 24 and len(day.shown) == timetable.PER_DAY
    html = page.content.decode()
    assert f"and {24 - timetable.PER_DAY} more" in html
    assert "not listed" in html and str(period.hidden) in html


def test_a_month_pages_to_the_next_and_counts_paused_schedules(world, login, hourly):
    Schedule.objects.filter(pk=world.schedule.pk).update(paused=True)
    client = login(world.users["admin"])
    later = (timezone.localdate().replace(day=1) + timedelta(days=70)).replace(day=1)
    page = client.get(reverse("schedule_calendar"), {"view": "month", "start": later.isoformat()})
    period = page.context["period"]
    assert period.start == later and period.next == (later + timedelta(days=32)).replace(day=1)
    in_month = [d for d in period.days if d.in_period]
    assert len(in_month) == (period.end - period.start).days
    assert period.total == 24 * len(in_month)
    assert "1 paused schedule left out" in page.content.decode()
    assert f"start={period.next:%Y-%m-%d}" in page.content.decode()


def test_past_runs_are_not_shown(world, hourly):
    now = timezone.now()
    period = timetable.build([hourly], "week", timezone.localdate(), now=now)
    assert all(when > now for day in period.days for when, _ in day.runs)


@pytest.mark.parametrize("query", [{"view": "year"}, {"start": "soon"}, {"start": "9999-12-31"}])
def test_bad_values_fall_back(world, login, query):
    assert login(world.users["admin"]).get(reverse("schedule_calendar"), query).status_code == 200


def test_a_grantee_sees_only_schedules_of_their_cluster(world, login, hourly):
    other_ws = factories.workspace()
    Schedule.objects.create(
        workspace=other_ws, cluster=factories.cluster(other_ws), prefix="secret",
        location=factories.location(other_ws), preset=Schedule.Preset.CUSTOM, cron="0 * * * *",
    )  # fmt: skip
    html = login(world.users["cluster_grantee"]).get(reverse("schedule_calendar")).content
    assert b"secret" not in html


def test_period_of_a_month_ends_on_the_first_of_the_next():
    assert timetable.period_of("month", date(2026, 12, 15))[:2] == (
        date(2026, 12, 1),
        date(2027, 1, 1),
    )
    assert timetable.period_of("week", date(2026, 12, 3))[0] == date(2026, 11, 30)
