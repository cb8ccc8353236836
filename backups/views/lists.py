"""Lists of backups, restores and etcd snapshots: filtered by permission, then by what
the URL asks (search, filters, sort: ``workspaces.views.listing``), then paged."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from workspaces.roles import Action
from workspaces.views.common import page_of
from workspaces.views.listing import Bulk, Filter, Listing

from ..engine.storage.base import StorageError
from ..engine.words import counted
from ..jobs import JobRefused, delete_backup
from ..models import ACTIVE_STATUSES, Backup, EtcdSnapshot, Restore, Status

STATUS = Filter("status", "Status", "status", tuple(Status.choices))
WORKSPACE = Filter("workspace", "Workspace", "workspace__name")
LOCATION = Filter("location", "Location", "location__name")
NEWEST = ("Newest first", "-created_at")
OLDEST = ("Oldest first", "created_at")

BACKUPS = Listing(
    search=("name", "cluster_name", "label_selector"),
    filters=(STATUS, Filter("cluster", "Cluster", "cluster_name"), LOCATION, WORKSPACE),
    dated="created_at",
    sorts={
        "newest": NEWEST,
        "oldest": OLDEST,
        "name": ("Name", "name"),
        "size": ("Largest first", "-size_bytes"),
        "expires": ("Expires soonest", "expires_at"),
    },
    default_sort="newest",
)
RESTORES = Listing(
    search=("name", "backup_name", "source_cluster_name", "target_cluster_name"),
    filters=(STATUS, Filter("cluster", "Into cluster", "target_cluster_name"), WORKSPACE),
    dated="created_at",
    sorts={"newest": NEWEST, "oldest": OLDEST, "name": ("Name", "name")},
    default_sort="newest",
)
SNAPSHOTS = Listing(
    search=("name", "cluster_name"),
    filters=(STATUS, Filter("cluster", "Cluster", "cluster_name"), LOCATION, WORKSPACE),
    dated="created_at",
    sorts={
        "newest": NEWEST,
        "oldest": OLDEST,
        "size": ("Largest first", "-size_bytes"),
        "revision": ("Highest revision", "-revision"),
    },
    default_sort="newest",
)


def _listed(request: HttpRequest, rows, listing: Listing) -> dict:
    rows, context = listing.apply(request, rows.restrict(request.user).select_related("created_by"))
    return {**context, "page": page_of(request, rows)}


@login_required
def backup_list(request: HttpRequest) -> HttpResponse:
    context = _listed(request, Backup.objects.select_related("location"), BACKUPS)
    page = context["page"]
    # Which shown rows the user may delete: one query for the page, not one per row.
    deletable = set(
        Backup.objects.restrict(request.user, Action.MANAGE)
        .filter(pk__in=[b.pk for b in page], source=Backup.Source.CONSOLE)
        .exclude(status__in=(Status.PENDING, Status.RUNNING))
        .values_list("pk", flat=True)
    )
    for backup in page:
        backup.deletable = backup.pk in deletable
    return render(request, "backups/list.html", {**context, "any_deletable": bool(deletable)})


@login_required
def restore_list(request: HttpRequest) -> HttpResponse:
    return render(request, "backups/restore_list.html", _listed(request, Restore.objects, RESTORES))


@login_required
def etcd_snapshot_list(request: HttpRequest) -> HttpResponse:
    rows = EtcdSnapshot.objects.select_related("location")
    return render(request, "backups/etcd_list.html", _listed(request, rows, SNAPSHOTS))


@login_required
@require_POST
def backup_bulk_delete(request: HttpRequest) -> HttpResponse:
    """Delete the ticked backups, after one typed confirmation. Each row is checked on
    its own (the user may delete it, it has ended, the console made it); the page says
    which are refused and why, and only the others are deleted."""
    ids = Bulk.of(request).ids
    visible = {
        b.pk: b
        for b in Backup.objects.restrict(request.user).select_related("location").filter(pk__in=ids)
    }
    allowed = set(
        Backup.objects.restrict(request.user, Action.MANAGE)
        .filter(pk__in=ids)
        .values_list("pk", flat=True)
    )
    deleting, refused = [], []
    for pk in ids:
        backup = visible.get(pk)
        if backup is None:
            continue  # not visible: say nothing about it (no leak)
        if pk not in allowed:
            refused.append((backup.name, "your role does not allow deleting it"))
        elif backup.status in ACTIVE_STATUSES:
            refused.append((backup.name, "it is still running"))
        elif backup.source != Backup.Source.CONSOLE:
            refused.append((backup.name, "it was imported from the location and is read-only here"))
        else:
            deleting.append(backup)
    phrase = f"delete {counted(len(deleting), 'backup')}"
    if request.POST.get("go") and deleting:
        if request.POST.get("confirm", "").strip() != phrase:
            messages.error(request, f"Type “{phrase}” to confirm.")
        else:
            done = 0
            for backup in deleting:
                try:
                    delete_backup(backup, by=request.user)
                    done += 1
                except (StorageError, JobRefused) as exc:
                    messages.error(request, f"Backup {backup.name} was not deleted: {exc}")
            messages.success(request, f"{counted(done, 'backup')} deleted.")
            return redirect("backup_list")
    context = {"deleting": deleting, "refused": refused, "phrase": phrase}
    return render(request, "backups/bulk_delete.html", context)
