"""The periodic check: conditions that no job end announces.

- A location is *unavailable* (its last validation failed): told to the
  workspace that owns it and to the workspaces whose schedules write to it.
- A schedule *missed its recovery point*: its newest usable backup (completed or
  partially failed; the schedule's creation before the first) is older than one
  interval of its timetable plus ``PALETTE_NOTIFY_RPO_GRACE`` minutes.

Each condition is announced once, when it is raised, and again only after it
cleared. The check costs the same few queries whatever the number of rows.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from backups.models import Schedule, Status
from locations.models import BackupLocation
from workspaces.models import Workspace

from .events import notify
from .models import Alarm, Event
from .payload import document


def check(now=None) -> int:
    """Raise and clear alarms; returns how many were raised now."""
    now = now or timezone.now()
    found: dict[tuple[int, str, str], tuple[str, dict]] = {}
    _locations(found)
    _recovery_points(found, now)
    active = {(a.workspace_id, a.event, a.key): a for a in Alarm.objects.filter(active=True)}
    for key, alarm in active.items():
        if key not in found:
            Alarm.objects.filter(pk=alarm.pk).update(active=False, cleared_at=now)
    new = [key for key in found if key not in active]
    workspaces = Workspace.objects.in_bulk({workspace_id for workspace_id, _, _ in new})
    raised = 0
    for workspace_id, event, key in new:
        alarm, created = Alarm.objects.get_or_create(
            workspace_id=workspace_id, event=event, key=key, defaults={"raised_at": now}
        )
        if not created and not Alarm.objects.filter(pk=alarm.pk, active=False).update(
            active=True, raised_at=now, cleared_at=None
        ):
            continue  # another check raised it in between
        summary, subject = found[(workspace_id, event, key)]
        notify(
            workspaces[workspace_id],
            event,
            document(event, workspaces[workspace_id], subject, summary),
        )
        raised += 1
    return raised


def _locations(found: dict) -> None:
    down = BackupLocation.objects.filter(status=BackupLocation.Status.UNAVAILABLE)
    rows = {loc.pk: loc for loc in down}
    pairs = {(loc.workspace_id, loc.pk) for loc in rows.values() if loc.workspace_id}
    pairs |= set(
        Schedule.objects.filter(location__in=list(rows)).values_list("workspace_id", "location_id")
    )
    for workspace_id, location_id in pairs:
        loc = rows[location_id]
        subject = {
            "kind": "location",
            "id": loc.pk,
            "name": loc.name,
            "status": loc.status,
            "error": loc.status_message,
            "path": loc.get_absolute_url(),
        }
        summary = f"Location {loc.name} is unavailable: {loc.status_message or 'validation failed'}"
        found[(workspace_id, Event.LOCATION_UNAVAILABLE.value, f"location:{loc.pk}")] = (
            summary,
            subject,
        )


def _recovery_points(found: dict, now) -> None:
    grace = timedelta(minutes=settings.PALETTE_NOTIFY_RPO_GRACE)
    usable = Q(backups__status__in=[Status.COMPLETED, Status.PARTIALLY_FAILED])
    schedules = (
        Schedule.objects.filter(paused=False)
        .select_related("cluster")
        .annotate(newest=Max("backups__finished_at", filter=usable))
    )
    for schedule in schedules:
        runs = schedule.upcoming(now, 2)
        if len(runs) < 2:
            continue
        interval = runs[1] - runs[0]
        since = schedule.newest or schedule.created_at
        if now - since <= interval + grace:
            continue
        subject = {
            "kind": "schedule",
            "id": schedule.pk,
            "name": str(schedule),
            "cluster": schedule.cluster.name if schedule.cluster_id else None,
            "last_recovery_point": schedule.newest.isoformat() if schedule.newest else None,
            "recovery_point_objective_seconds": int(interval.total_seconds()),
            "path": schedule.get_absolute_url(),
        }
        hours = (now - since).total_seconds() / 3600
        summary = (
            f"Schedule {schedule} missed its recovery point: the newest usable backup is "
            f"{hours:.1f} h old, its timetable asks for one every "
            f"{interval.total_seconds() / 3600:.1f} h"
        )
        if not schedule.newest:
            summary = f"Schedule {schedule} missed its recovery point: no usable backup yet"
        found[(schedule.workspace_id, Event.RPO_MISSED.value, f"schedule:{schedule.pk}")] = (
            summary,
            subject,
        )
