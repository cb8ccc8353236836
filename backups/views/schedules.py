"""Schedules (of a cluster or a whole workspace), their runs, and workspace backups now."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from backups.engine.words import counted
from workspaces import audit
from workspaces.access import can
from workspaces.models import Cluster, Workspace
from workspaces.roles import Action
from workspaces.views.common import (
    fetch,
    fragment,
    page_of,
    require,
    visible_cluster,
    visible_workspace,
)
from workspaces.views.listing import Filter, Listing

from .. import cron, timetable
from ..forms import ScheduleForm, WorkspaceBackupForm, WorkspaceRestoreForm
from ..models import Backup, BackupRun, Schedule
from ..retention import WORDS, Tiers, schedule_plan
from ..scheduling import backup_workspace, restore_run, run_now, set_paused

SCHEDULES = Listing(
    search=("prefix", "cluster__name", "workspace__name", "cron"),
    filters=(
        Filter("state", "State", "paused", (("False", "active"), ("True", "paused"))),
        Filter("preset", "When", "preset", tuple(Schedule.Preset.choices)),
        Filter("cluster", "Cluster", "cluster__name"),
        Filter("location", "Location", "location__name"),
        Filter("workspace", "Workspace", "workspace__name"),
    ),
    sorts={
        "next": ("Next run soonest", "next_run_at,prefix"),
        "name": ("Name", "prefix"),
        "last": ("Ran most recently", "-last_run_at"),
    },
    default_sort="next",
)


def _schedules(user):
    return Schedule.objects.restrict(user).select_related("workspace", "cluster", "location")


def _schedule(request: HttpRequest, pk: int, action: str = Action.VIEW) -> Schedule:
    schedules = Schedule.objects.select_related("workspace", "cluster", "location")
    return fetch(request, schedules, action, "change schedules", pk=pk)


def shown_runs(user, runs) -> list[BackupRun]:
    """The runs, each with only the backups and skip records the user may see: a
    single-cluster grantee sees those of that cluster. A few queries, whatever the
    number of runs."""
    runs = list(runs.prefetch_related(Prefetch("backups", Backup.objects.restrict(user))))
    hide_skips(user, runs)
    return runs


def hide_skips(user, runs: list[BackupRun]) -> None:
    """Set ``shown_skipped`` on each run: its skip records, less those about clusters the
    user may not see (unless they hold a role in the whole workspace)."""
    workspaces = {run.workspace_id for run in runs}
    wholly = set(
        Workspace.objects.with_role(user).filter(pk__in=workspaces).values_list("pk", flat=True)
    )
    partly = Cluster.objects.restrict(user).filter(workspace__in=workspaces - wholly)
    names = set(partly.values_list("name", flat=True)) if workspaces - wholly else set()
    for run in runs:
        run.shown_skipped = [
            skip
            for skip in run.skipped
            if run.workspace_id in wholly or skip.get("cluster") in names
        ]


@login_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    """Every schedule the user can see, soonest next run first; paused and never-running
    ones last. Three queries at any size (count, page, the ones they may run)."""
    user = request.user
    schedules, listing = SCHEDULES.apply(request, _schedules(user))
    page = page_of(request, schedules)
    shown = [s.pk for s in page]
    runnable = set(
        Schedule.objects.restrict(user, Action.BACKUP)
        .filter(pk__in=shown)
        .values_list("pk", flat=True)
    )
    for schedule in page:
        schedule.can_run = schedule.pk in runnable
    return render(request, "backups/schedule_list.html", {**listing, "page": page})


@login_required
@require_POST
def schedule_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Fire the schedule now (its timetable is unchanged): whoever may back up what it
    backs up. Shows the run it made."""
    schedule = _schedule(request, pk)
    require(request.user, Action.BACKUP, schedule, "run this schedule")
    run = run_now(schedule, request.user)
    made = run.backups.count()
    if made:
        messages.success(
            request,
            f"Schedule {schedule.prefix} started {made} backup{'s' if made != 1 else ''}.",
        )
    for skip in run.skipped:
        messages.warning(request, f"{skip['cluster']} skipped: {skip['reason']}")
    return redirect(run)


@login_required
def cluster_schedules(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name)
    schedules = cluster.schedules.restrict(request.user).select_related("location")
    workspace_wide = (
        cluster.workspace.schedules.restrict(request.user)
        .filter(cluster__isnull=True)
        .select_related("location")
    )
    return render(
        request,
        "backups/cluster_schedules.html",
        {
            "cluster": cluster,
            "schedules": schedules,
            "workspace_schedules": workspace_wide,
            "sees_whole": can(request.user, Action.VIEW, cluster.workspace),
            "can_manage": can(request.user, Action.MANAGE, cluster),
        },
    )


def _edit(request: HttpRequest, schedule: Schedule, back: str) -> HttpResponse:
    form = ScheduleForm(
        request.POST or None, instance=schedule, user=request.user, workspace=schedule.workspace
    )
    if request.method == "POST" and form.is_valid():
        created = schedule.pk is None
        if created:
            schedule.created_by = request.user
        schedule = form.save(timezone.now())
        audit.record(
            request.user, "created" if created else "changed", schedule, cron=schedule.expression
        )
        messages.success(
            request,
            f"Schedule {schedule.prefix} saved. Next run: "
            + (
                f"{timezone.localtime(schedule.next_run_at):%Y-%m-%d %H:%M %Z}."
                if schedule.next_run_at
                else "never."
            ),
        )
        return redirect(schedule)
    upcoming = schedule.upcoming(timezone.now()) if schedule.pk else []
    return render(
        request,
        "backups/schedule_edit.html",
        {"form": form, "schedule": schedule, "back": back, "upcoming": upcoming},
    )


@login_required
def schedule_create_for_cluster(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name, Action.MANAGE, "create schedules")
    schedule = Schedule(workspace=cluster.workspace, cluster=cluster)
    return _edit(request, schedule, back=cluster.get_absolute_url())


@login_required
def schedule_create_for_workspace(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug, Action.MANAGE, "create schedules")
    return _edit(request, Schedule(workspace=workspace), back=workspace.get_absolute_url())


@login_required
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule(request, pk, Action.MANAGE)
    return _edit(request, schedule, back=schedule.get_absolute_url())


def tier_preview(user, schedule) -> dict | None:
    """What the retention tiers keep (and why) and what expiry will delete, limited to
    the backups ``user`` may see; the plan itself is over every backup of the schedule."""
    tiers = Tiers.of(schedule)
    if not tiers.active:
        return None
    result = schedule_plan(schedule)
    visible = set(
        Backup.objects.restrict(user).filter(schedule=schedule).values_list("pk", flat=True)
    )
    return {
        "describe": tiers.describe(),
        "keep": [
            (b, ", ".join(WORDS[t] for t in why))
            for b, why in result.keep.items()
            if b.pk in visible
        ],  # fmt: skip
        "drop": [b for b in result.drop if b.pk in visible],
    }


@login_required
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule(request, pk)
    runs = shown_runs(request.user, schedule.runs.restrict(request.user)[:20])
    return render(
        request,
        "backups/schedule_detail.html",
        {
            "schedule": schedule,
            "runs": runs,
            "upcoming": schedule.upcoming(timezone.now()),
            "tiers": tier_preview(request.user, schedule),
            "can_manage": can(request.user, Action.MANAGE, schedule),
            "can_run": can(request.user, Action.BACKUP, schedule),
        },
    )


@login_required
def schedule_preview(request: HttpRequest) -> HttpResponse:
    """The next five runs of what is typed, or why it is not a cron expression."""
    preset = request.GET.get("preset", "")
    expression = request.GET.get("cron", "").strip() if preset == Schedule.Preset.CUSTOM else preset
    context = {"runs": [], "problem": ""}
    if preset == Schedule.Preset.NEVER:
        context["problem"] = "This schedule never runs (it can still be started by hand)."
    elif preset not in Schedule.Preset.values:
        context["problem"] = "Choose when it runs."
    elif problem := cron.problem(expression):
        context["problem"] = problem
    else:
        context["runs"] = cron.next_runs(expression, timezone.now(), 5)
    return render(request, "backups/_cron_preview.html", context)


@login_required
@require_POST
def schedule_pause(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause, or resume from now on (missed runs are not made up)."""
    schedule = _schedule(request, pk, Action.MANAGE)
    set_paused(schedule, not schedule.paused, request.user)
    messages.success(
        request, f"Schedule {schedule.prefix} {'paused' if schedule.paused else 'resumed'}."
    )
    return redirect(schedule)


@login_required
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = _schedule(request, pk, Action.MANAGE)
    if request.method == "POST":
        back = (
            schedule.cluster.get_absolute_url()
            if schedule.cluster_id
            else schedule.workspace.get_absolute_url()
        )
        audit.record(request.user, "deleted", schedule)
        schedule.delete()
        messages.success(
            request, "Schedule deleted. The backups it made are kept until they expire."
        )
        return redirect(back)
    return render(request, "backups/schedule_delete.html", {"schedule": schedule})


@login_required
def schedule_calendar(request: HttpRequest) -> HttpResponse:
    """The runs of every schedule the user can see, a week or a month at a time."""
    view = request.GET.get("view", "week")
    view = view if view in timetable.VIEWS else "week"
    today = timezone.localdate()
    try:
        around = (
            date.fromisoformat(request.GET.get("start", "")) if request.GET.get("start") else today
        )
    except ValueError:
        around = today
    around = min(max(around, today - timedelta(days=400)), today + timedelta(days=800))
    period = timetable.build(_schedules(request.user), view, around)
    return render(request, "backups/schedule_calendar.html", {"period": period, "today": today})


def _run(request: HttpRequest, pk: int) -> BackupRun:
    return fetch(request, BackupRun.objects.select_related("workspace", "schedule"), pk=pk)


@login_required
def backup_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(request, pk)
    user = request.user
    hide_skips(user, [run])
    backups = list(run.backups.restrict(user).select_related("location", "created_by"))
    restores = list(run.restores.restrict(user).select_related("created_by"))
    # The page polls its tables while any backup or restore of the run is under way.
    active = any(not op.is_done for op in [*backups, *restores])
    response = render(
        request,
        fragment(request, "backups/run_detail.html", "live"),
        {
            "run": run,
            "backups": backups,
            "restores": restores,
            "active": active,
            "can_restore": can(request.user, Action.RESTORE, run.workspace),
            "form": WorkspaceRestoreForm(),
        },
    )
    if request.htmx and not active:
        return HttpResponseStopPolling(response.content)
    return response


@login_required
@require_POST
def backup_run_restore(request: HttpRequest, pk: int) -> HttpResponse:
    """Restore a whole run: the chosen namespaces into every cluster of the workspace."""
    run = _run(request, pk)
    require(request.user, Action.RESTORE, run.workspace, "restore this workspace")
    form = WorkspaceRestoreForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(" ".join(e) for e in form.errors.values()))
        return redirect(run)
    restores, skipped = restore_run(run, by=request.user, **form.options())
    messages.success(request, f"{counted(len(restores), 'restore')} started.")
    for skip in skipped:
        messages.warning(request, f"{skip['cluster']} skipped: {skip['reason']}")
    return redirect(run)


@login_required
def workspace_backup(request: HttpRequest, slug: str) -> HttpResponse:
    """Back up every healthy cluster of the workspace now; the others are listed as skipped."""
    workspace = visible_workspace(request, slug, Action.BACKUP, "back up this workspace")
    form = WorkspaceBackupForm(request.POST or None, user=request.user, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        run = backup_workspace(
            workspace,
            form.cleaned_data["location"],
            prefix=form.cleaned_data["prefix"],
            options=form.option_values(),
            by=request.user,
        )
        made = run.backups.count()
        messages.success(
            request,
            f"{counted(made, 'backup')} started; {counted(len(run.skipped), 'cluster')} skipped.",
        )
        return redirect(run)
    return render(request, "backups/workspace_backup.html", {"workspace": workspace, "form": form})
