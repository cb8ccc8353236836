"""Schedules firing, workspace backups, and skip records.

Every minute a beat task calls ``tick``. A due schedule is claimed by moving its
``next_run_at`` forward with a conditional UPDATE (``WHERE next_run_at = <the
value read>``): with several beat or worker processes, exactly one wins each
firing, the others see zero rows updated and move on.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from backups.engine.words import counted
from workspaces import audit
from workspaces.access import can
from workspaces.kube import check_health
from workspaces.models import Cluster, Workspace
from workspaces.roles import Action

from .jobs import JobRefused, start_backup, start_restore
from .models import ACTIVE_STATUSES, Backup, BackupRun, Schedule
from .naming import backup_name

log = logging.getLogger(__name__)

OPTION_FIELDS = (
    "include_namespaces",
    "exclude_namespaces",
    "include_resources",
    "exclude_resources",
    "cluster_resources",
    "label_selector",
    "include_disks",
    "volume_mode",
    "volume_policy",
    "ttl",
)


def tick(now: datetime | None = None) -> list[BackupRun]:
    """Fire every due schedule once; returns the runs this call made."""
    now = now or timezone.now()
    runs = []
    due = Schedule.objects.filter(paused=False, next_run_at__lte=now).select_related(
        "workspace", "cluster", "location"
    )
    for schedule in due:
        try:
            if claim(schedule, now):
                runs.append(fire(schedule, now))
        except Exception:  # one schedule's surprise must never stop the others
            log.exception("schedule %s could not fire", schedule.pk)
    return runs


def claim(schedule: Schedule, now: datetime) -> bool:
    """Move the schedule to its next time, if no other ticker did since we read it.

    True for exactly one caller per firing: the UPDATE matches only while
    ``next_run_at`` still holds the value this caller read.
    """
    planned = schedule.next_run_at
    schedule.plan_next(now)
    won = Schedule.objects.filter(pk=schedule.pk, next_run_at=planned, paused=False).update(
        next_run_at=schedule.next_run_at, last_run_at=now
    )
    return bool(won)


def fire(schedule: Schedule, now: datetime, by=None) -> BackupRun:
    """One firing: skipped as a whole while the previous backup still runs. ``by``
    is the user who asked for it now ("Run now"); None for the timetable."""
    running = (
        Backup.objects.filter(schedule=schedule, status__in=ACTIVE_STATUSES)
        .values_list("name", flat=True)
        .first()
    )
    if running:
        run = BackupRun.objects.create(
            workspace=schedule.workspace,
            schedule=schedule,
            started_at=now,
            skipped=[{"cluster": "*", "reason": f"the previous backup {running} is still running"}],
            created_by=audit.signed_in(by),
        )
        result = f"Skipped at {now:%Y-%m-%d %H:%M}: the previous backup {running} is still running."
    else:
        clusters = [schedule.cluster] if schedule.cluster_id else None
        run = backup_workspace(
            schedule.workspace,
            schedule.location,
            prefix=schedule.prefix,
            options={name: getattr(schedule, name) for name in OPTION_FIELDS},
            now=now,
            by=by,
            schedule=schedule,
            clusters=clusters,
        )
        made = run.backups.count()
        result = f"{now:%Y-%m-%d %H:%M}: {counted(made, 'backup')} started"
        if run.skipped:
            result += ", skipped " + "; ".join(
                f"{s['cluster']}: {s['reason']}" for s in run.skipped
            )
        result += "."
    Schedule.objects.filter(pk=schedule.pk).update(last_result=result)
    log.info("schedule %s: %s", schedule, result)
    return run


def run_now(schedule: Schedule, by) -> BackupRun:
    """Fire a schedule by hand, now; its timetable (next_run_at) stays as it was."""
    now = timezone.now()
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=now)
    run = fire(schedule, now, by=by)
    audit.record(by, "ran now", schedule, run=run.pk)
    return run


def set_paused(schedule: Schedule, paused: bool, by) -> None:
    """Pause, or resume from now on (missed runs are not made up)."""
    schedule.paused = paused
    schedule.plan_next(timezone.now())
    schedule.save(update_fields=["paused", "next_run_at"])
    audit.record(by, "paused" if paused else "resumed", schedule)


def backup_workspace(
    workspace: Workspace,
    location,
    *,
    prefix: str,
    options: dict,
    now: datetime | None = None,
    by=None,
    schedule: Schedule | None = None,
    clusters: list[Cluster] | None = None,
) -> BackupRun:
    """One backup per healthy cluster (checked now); the others are recorded as skipped."""
    now = now or timezone.now()
    targets = clusters if clusters is not None else list(workspace.clusters.all())
    with transaction.atomic():
        run = BackupRun.objects.create(
            workspace=workspace,
            schedule=schedule,
            started_at=now,
            created_by=audit.signed_in(by),
        )
    skipped = []
    for cluster in targets:
        health = check_health(cluster.kubeconfig)
        cluster.record_health(health)
        if not health.reachable:
            skipped.append({"cluster": cluster.name, "reason": health.message})
            continue
        try:
            backup = start_backup(
                cluster,
                location,
                by=by,
                name=backup_name(prefix, cluster.name, now),
                schedule=schedule,
                **options,
            )
        except JobRefused as exc:
            skipped.append({"cluster": cluster.name, "reason": str(exc)})
            continue
        Backup.objects.filter(pk=backup.pk).update(run=run)
    if not targets:
        skipped.append({"cluster": "*", "reason": "the workspace has no clusters"})
    run.skipped = skipped
    run.save(update_fields=["skipped"])
    skipped_names = [s["cluster"] for s in skipped]
    if schedule is not None:  # a schedule's run is the schedule's event, cluster or workspace
        audit.record(by, "ran", schedule, run=run.pk, skipped=skipped_names)
    else:
        audit.record(by, "backed up", workspace, run=run.pk, skipped=skipped_names)
    return run


def restore_run(run: BackupRun, *, by=None, **options) -> tuple[list, list[dict]]:
    """Restore the chosen namespaces into every cluster now in the workspace, each
    from that cluster's backup in the run. Returns (restores, skipped)."""
    backups = {b.cluster_name: b for b in run.backups.select_related("location")}
    restores, skipped = [], []
    for cluster in run.workspace.clusters.all():
        backup = backups.get(cluster.name)
        if backup is None:
            skipped.append({"cluster": cluster.name, "reason": "the run has no backup of it"})
        elif by is not None and not can(by, Action.RESTORE, cluster):
            skipped.append({"cluster": cluster.name, "reason": "you may not restore into it"})
        else:
            try:
                restores.append(start_restore(backup, cluster, by=by, run=run, **options))
            except JobRefused as exc:
                skipped.append({"cluster": cluster.name, "reason": str(exc)})
    audit.record(by, "restored workspace", run.workspace, run=run.pk, restores=len(restores))
    return restores, skipped
