"""Retention tiers: 400 simulated days through a controllable clock keep exactly the
expected set; the schedule page's preview is what expiry then deletes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from backups.expiry import gc_backups
from backups.models import Backup, Schedule, Status
from backups.retention import Tiers, plan, schedule_plan
from tests import factories


@dataclass(frozen=True)
class Made:
    n: int
    created_at: datetime


TIERS = Tiers(keep_last=3, keep_hourly=5, keep_daily=7, keep_weekly=4, keep_monthly=12,
              keep_yearly=3)  # fmt: skip


def expected(times: list[datetime], tiers: Tiers) -> set[datetime]:
    """The same rule written the long way: the newest backup of each of the newest N periods."""
    newest_first = sorted(times, reverse=True)
    keep = set(newest_first[: tiers.keep_last])
    periods = {
        "keep_hourly": "%Y-%m-%d %H",
        "keep_daily": "%Y-%m-%d",
        "keep_weekly": "%G-%V",
        "keep_monthly": "%Y-%m",
        "keep_yearly": "%Y",
    }
    for tier, fmt in periods.items():
        newest_of: dict[str, datetime] = {}
        for moment in times:
            label = moment.strftime(fmt)
            newest_of[label] = max(newest_of.get(label, moment), moment)
        for label in sorted(newest_of, key=newest_of.get, reverse=True)[: getattr(tiers, tier)]:
            keep.add(newest_of[label])
    return keep


def test_four_hundred_days_keep_exactly_the_expected_set():
    clock = datetime(2025, 11, 28, 3, 17, tzinfo=UTC)
    every = timedelta(hours=5, minutes=13)  # drifts across hours, days and weeks
    made, kept, n = [], [], 0
    end = clock + timedelta(days=400)
    while clock < end:
        n += 1
        backup = Made(n, clock)
        made.append(backup)
        kept.append(backup)
        result = plan(kept, TIERS)  # expiry after each run, as the hourly job does
        kept = list(result.keep)
        clock += every
    assert {b.created_at for b in kept} == expected([b.created_at for b in made], TIERS)
    # And the numbers the tiers promise: at most 3 + 5 + 7 + 4 + 12 + 3.
    assert len(kept) <= 34
    last_of_2025 = max((b for b in made if b.created_at.year == 2025), key=lambda b: b.created_at)
    assert made[-1] in kept and last_of_2025 in kept  # the newest, and 2025's as a yearly
    assert made[0] not in kept


def test_reasons_say_which_tiers_keep_a_backup():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = [Made(i, start + timedelta(days=i)) for i in range(10)]
    result = plan(items, Tiers(keep_last=1, keep_daily=2))
    assert result.keep[items[9]] == ["keep_last", "keep_daily"]
    assert result.keep[items[8]] == ["keep_daily"]
    assert result.drop == list(reversed(items[:8]))


def test_no_tiers_keep_everything():
    items = [Made(i, datetime(2026, 1, i + 1, tzinfo=UTC)) for i in range(5)]
    assert set(plan(items, Tiers()).keep) == set(items) and not plan(items, Tiers()).drop


def test_periods_are_utc_whatever_the_time_zone():
    east = datetime(2026, 3, 2, 1, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Tokyo")
    )
    west = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    result = plan([Made(1, east), Made(2, west)], Tiers(keep_daily=2))
    assert len(result.keep) == 2  # two UTC days, though both fall on March 2 in Tokyo


@pytest.fixture
def tiered(world):
    schedule = world.schedule
    Schedule.objects.filter(pk=schedule.pk).update(keep_last=2, keep_daily=3)
    schedule.refresh_from_db()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(8):
        backup = factories.backup(
            world.cluster, world.location, schedule=schedule, name=f"tier-{i}-{world.cluster.pk}"
        )
        # Two a day, at 00:00 and 12:00: the days hold two backups each.
        Backup.objects.filter(pk=backup.pk).update(created_at=start + timedelta(hours=12 * i))
        made.append(backup.name)
    running = factories.backup(
        world.cluster, world.location, schedule=schedule, status=Status.RUNNING,
        name=f"tier-running-{world.cluster.pk}",
    )  # fmt: skip
    Backup.objects.filter(pk=running.pk).update(created_at=start - timedelta(days=30))
    return world, made


def test_the_preview_is_what_expiry_deletes(tiered, login, settings, tmp_path):
    world, made = tiered
    settings.PALETTE_FILESYSTEM_ROOTS = [str(tmp_path)]
    world.location.path = str(tmp_path)
    world.location.save()
    preview = schedule_plan(world.schedule)
    dropped = sorted(b.name for b in preview.drop)
    # Newest two (last), and the newest of each of the three newest days.
    assert sorted(b.name for b in preview.keep) == sorted([made[7], made[6], made[5], made[3]])
    page = login(world.users["admin"]).get(reverse("schedule_detail", args=[world.schedule.pk]))
    text = page.content.decode()
    for name in dropped:
        assert name in text
    assert "Expiry will delete" in text
    result = gc_backups()
    assert sorted(result.deleted) == dropped
    left = set(Backup.objects.filter(schedule=world.schedule).values_list("name", flat=True))
    assert left == {b.name for b in preview.keep} | {f"tier-running-{world.cluster.pk}"}


def _edit(world, client, **extra):
    return client.post(
        reverse("schedule_edit", args=[world.schedule.pk]),
        {"prefix": "nightly", "preset": Schedule.Preset.WEEKLY, "location": world.location.pk,
         "ttl": "168h", "cluster_resources": "auto", **extra},
    )  # fmt: skip


def test_the_schedule_form_saves_tiers_and_a_second_location(world, login):
    second = factories.location(world.workspace, "second-copy")
    client = login(world.users["admin"])
    response = _edit(world, client, keep_last="2", keep_weekly="4", copy_to=second.pk)
    assert response.status_code == 302, response.content[:400]
    world.schedule.refresh_from_db()
    assert Tiers.of(world.schedule) == Tiers(keep_last=2, keep_weekly=4)
    assert world.schedule.copy_to == second
    page = client.get(reverse("schedule_detail", args=[world.schedule.pk])).content.decode()
    assert "Keep 2 last, 4 weekly" in page and "second-copy" in page


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"keep_daily": "-1"}, "keep_daily"), ({"keep_last": "x"}, "keep_last"),
     ({"keep_yearly": "100000"}, "keep_yearly")],
)  # fmt: skip
def test_bad_tiers_are_refused_and_nothing_is_saved(world, login, extra, field):
    response = _edit(world, login(world.users["admin"]), **extra)
    assert response.status_code == 200 and field in response.context["form"].errors
    world.schedule.refresh_from_db()
    assert not Tiers.of(world.schedule).active


def test_a_copy_to_the_same_location_is_refused(world, login):
    response = _edit(world, login(world.users["admin"]), copy_to=world.location.pk)
    assert "copy_to" in response.context["form"].errors
