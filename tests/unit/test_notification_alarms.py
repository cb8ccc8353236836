"""The periodic check: an unavailable location and a schedule past its recovery
point are each announced once, and again only after they cleared."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from backups.models import Backup, Schedule, Status
from locations.models import BackupLocation
from notifications import alarms
from notifications.models import Alarm, Delivery, Event, Rule
from tests import factories


def listen(world, *events) -> Rule:
    return Rule.objects.create(workspace=world.workspace, name="ops", channel=Rule.Channel.EMAIL,
                               recipients="ops@example.org", events=list(events))  # fmt: skip


def set_location(world, status, message="") -> None:
    BackupLocation.objects.filter(pk=world.location.pk).update(
        status=status, status_message=message
    )


def quiet_schedules(world) -> None:
    """The world's schedule has just made a good backup: it is within its recovery point."""
    Backup.objects.filter(pk=world.backup.pk).update(
        schedule=world.schedule, status=Status.COMPLETED, finished_at=timezone.now()
    )


def test_an_unavailable_location_is_announced_once_until_it_clears(world):
    listen(world, Event.LOCATION_UNAVAILABLE)
    quiet_schedules(world)
    set_location(world, BackupLocation.Status.UNAVAILABLE, "bucket not found")
    assert alarms.check() == 1
    assert alarms.check() == 0  # still down: not told again
    [delivery] = Delivery.objects.all()
    assert delivery.event == "location.unavailable"
    assert delivery.payload["subject"]["name"] == world.location.name
    assert "bucket not found" in delivery.summary
    set_location(world, BackupLocation.Status.AVAILABLE)
    assert alarms.check() == 0
    assert not Alarm.objects.get().active
    set_location(world, BackupLocation.Status.UNAVAILABLE, "again")
    assert alarms.check() == 1
    assert Delivery.objects.count() == 2


def test_a_shared_location_tells_the_workspaces_whose_schedules_use_it(world):
    other = factories.workspace("Other")
    shared = factories.location(None, "shared-store", status=BackupLocation.Status.UNAVAILABLE)
    Schedule.objects.create(workspace=other, prefix="x", location=shared)
    Rule.objects.create(workspace=other, name="theirs", channel=Rule.Channel.EMAIL,
                        recipients="o@example.org", events=[Event.LOCATION_UNAVAILABLE])  # fmt: skip
    listen(world, Event.LOCATION_UNAVAILABLE)
    quiet_schedules(world)
    alarms.check()
    [delivery] = Delivery.objects.all()
    assert delivery.rule.workspace == other  # the world's workspace does not use it


def test_a_schedule_without_a_recent_backup_missed_its_recovery_point(world):
    listen(world, Event.RPO_MISSED)
    week_ago = timezone.now() - timedelta(days=8)
    Schedule.objects.filter(pk=world.schedule.pk).update(created_at=week_ago - timedelta(days=30))
    Backup.objects.filter(pk=world.backup.pk).update(
        schedule=world.schedule, status=Status.COMPLETED, finished_at=week_ago
    )
    assert alarms.check() == 1
    [delivery] = Delivery.objects.all()
    assert delivery.event == "schedule.missed_recovery_point"
    subject = delivery.payload["subject"]
    assert subject["recovery_point_objective_seconds"] == 7 * 24 * 3600
    assert subject["cluster"] == world.cluster.name
    quiet_schedules(world)  # a good backup arrives: the alarm clears
    assert alarms.check() == 0
    assert not Alarm.objects.get().active


def test_a_failed_backup_is_no_recovery_point(world):
    listen(world, Event.RPO_MISSED)
    long_ago = timezone.now() - timedelta(days=60)
    Schedule.objects.filter(pk=world.schedule.pk).update(created_at=long_ago)
    Backup.objects.filter(pk=world.backup.pk).update(
        schedule=world.schedule, status=Status.FAILED, finished_at=timezone.now()
    )
    assert alarms.check() == 1
    assert "no usable backup yet" in Delivery.objects.get().summary


def test_a_new_or_paused_schedule_has_missed_nothing(world):
    listen(world, Event.RPO_MISSED)
    assert alarms.check() == 0  # created just now
    Schedule.objects.filter(pk=world.schedule.pk).update(
        created_at=timezone.now() - timedelta(days=60), paused=True
    )
    assert alarms.check() == 0


def test_the_check_costs_the_same_queries_whatever_the_size(world, django_assert_max_num_queries):
    quiet_schedules(world)
    for n in range(30):
        loc = factories.location(world.workspace, f"extra-{n}")
        Schedule.objects.create(workspace=world.workspace, cluster=world.cluster, prefix=f"p{n}",
                                location=loc)  # fmt: skip
    alarms.check()  # nothing is late: no alarm, no delivery
    with django_assert_max_num_queries(6):
        alarms.check()
