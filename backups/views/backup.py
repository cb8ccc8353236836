"""One cluster's backups: create, watch, browse, download, delete."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backups.engine.storage.base import NotFound, StorageError
from backups.engine.storage.layout import Layout
from backups.engine.velero import reader
from backups.engine.velero.reader import ArchiveError
from locations.models import BackupLocation
from locations.providers import get_provider
from workspaces.access import can, clusters_for
from workspaces.kube import explain, list_namespaces
from workspaces.roles import Action
from workspaces.views.common import fetch, page_of, require, visible_cluster

from .. import browse
from ..copies import queue_copy
from ..forms import BackupForm
from ..jobs import BackupJob, JobRefused, delete_backup, start_backup
from ..models import Backup
from .download import stream_object


def _backup(request: HttpRequest, pk: int) -> Backup:
    queryset = Backup.objects.select_related("location", "cluster", "workspace", "created_by")
    return fetch(request, queryset, pk=pk)


def cluster_namespaces(cluster) -> tuple[list[str], str]:
    """The cluster's namespaces now, else the last known ones and why (the form works
    with either)."""
    try:
        return list_namespaces(cluster.kubeconfig), ""
    except Exception as exc:
        why = explain(exc, cluster.api_server)
        return (
            cluster.namespaces,
            f"Could not read the namespaces now ({why}); showing the last known ones.",
        )


@login_required
def cluster_backups(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name)
    backups = cluster.backups.restrict(request.user).select_related("location", "created_by")
    return render(
        request,
        "backups/cluster_backups.html",
        {
            "cluster": cluster,
            "page": page_of(request, backups),
            "can_backup": can(request.user, Action.BACKUP, cluster),
        },
    )


@login_required
def backup_create(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name, Action.BACKUP, "back up this cluster")
    namespaces, note = cluster_namespaces(cluster)
    form = BackupForm(
        request.POST or None, user=request.user, cluster=cluster, namespaces=namespaces
    )
    if request.method == "POST" and form.is_valid():
        try:
            backup = start_backup(
                cluster, form.cleaned_data["location"], by=request.user, **form.options()
            )
        except JobRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Backup {backup.name} started.")
            return redirect(backup)
    return render(request, "backups/create.html", {"cluster": cluster, "form": form, "note": note})


@login_required
def backup_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The archive, streamed from the location (never loaded whole)."""
    backup = _backup(request, pk)
    key = Layout(backup.location.prefix).backup_file(backup.name, "archive")
    return stream_object(request, backup, key, f"{backup.name}.tar.gz", "application/gzip")


@login_required
def backup_delete(request: HttpRequest, pk: int) -> HttpResponse:
    backup = _backup(request, pk)
    require(request.user, Action.MANAGE, backup, "delete backups")
    if request.method == "POST":
        if request.POST.get("confirm_name") != backup.name:
            messages.error(request, "Type the backup's name to confirm.")
            return redirect("backup_delete", pk=backup.pk)
        try:
            delete_backup(backup, by=request.user)
        except (StorageError, JobRefused) as exc:
            messages.error(request, f"Backup {backup.name} was not deleted: {exc}")
            return redirect(backup)
        messages.success(
            request, f"Backup {backup.name} deleted from {backup.location} and the console."
        )
        if backup.cluster_id:
            return redirect("cluster_backups", name=backup.cluster_name)
        return redirect("backup_list")
    return render(request, "backups/delete.html", {"backup": backup})


@login_required
def backup_detail(request: HttpRequest, pk: int) -> HttpResponse:
    backup = _backup(request, pk)
    return render(
        request,
        "backups/detail.html",
        {
            **BackupJob.page_context(request.user, backup),
            "can_delete": can(request.user, Action.MANAGE, backup),
            "can_restore": can(request.user, Action.RESTORE, backup),
            "can_download": can(request.user, Action.DOWNLOAD, backup),
            "copy_targets": copy_targets(request.user, backup)
            if backup.status == "completed" and can(request.user, Action.BACKUP, backup)
            else [],
        },
    )


@login_required
def backup_contents(request: HttpRequest, pk: int) -> HttpResponse:
    """Results and the resource list, read from storage (loaded after the page)."""
    backup = _backup(request, pk)
    context = {
        "backup": backup,
        # the content browser's choices lead to the restore wizard, which checks again
        "can_restore_items": can(request.user, Action.RESTORE, backup)
        and clusters_for(request.user, Action.RESTORE).exists(),
    }
    try:
        wanted = browse.page_filter(request.GET)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    context["filter"] = wanted
    context["query"] = urlencode({k: v for k, v in wanted.items() if v and k != "number"})
    try:
        with get_provider(backup.location) as provider:
            context["results"] = reader.results(
                provider, Layout(backup.location.prefix), backup.name
            )
            found = browse.catalogue(backup, provider)
            context["kinds"] = found.kinds()
            context["page"] = found.page(**wanted)
            context["contents"] = context["page"].rows
    except (StorageError, ArchiveError) as exc:
        context["storage_error"] = str(exc)
    return render(request, "backups/detail.html#contents", context)


@login_required
def backup_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One backed-up object as YAML (Secrets' values masked)."""
    backup = _backup(request, pk)
    type_name = request.GET.get("type", "")
    namespace = request.GET.get("namespace", "")
    item = request.GET.get("name", "")
    try:
        with get_provider(backup.location) as provider:
            try:
                found = browse.catalogue(backup, provider).index
            except NotFound:  # neither index nor resource list: the archive is read through
                found = None
            obj = reader.find_item(provider, Layout(backup.location.prefix), backup.name,
                                   type_name, namespace, item, archive_index=found)  # fmt: skip
    except (StorageError, ArchiveError) as exc:
        obj, error, missing = None, f"Cannot read the archive: {exc}", False
    else:
        error, missing = ("", False) if obj else ("This object is not in the archive.", True)
    context = {
        "backup": backup,
        "type_name": type_name,
        "namespace": namespace,
        "item": item,
        "yaml": browse.as_yaml(obj) if obj else "",
        "error": error,
    }
    template = "backups/item.html#item" if request.htmx else "backups/item.html"
    return render(request, template, context, status=404 if missing else 200)


def copy_targets(user, backup: Backup):
    """Locations ``user`` may write to, other than the backup's own."""
    usable = BackupLocation.objects.restrict(user, Action.BACKUP).exclude(pk=backup.location_id)
    return usable.exclude(status=BackupLocation.Status.UNAVAILABLE)


@login_required
@require_POST
def backup_copy(request: HttpRequest, pk: int) -> HttpResponse:
    """Copy a completed backup to another location (a worker copies and verifies it)."""
    backup = fetch(request, Backup.objects.select_related("location"), Action.BACKUP,
                   "copy backups", pk=pk)  # fmt: skip
    wanted = request.POST.get("location", "")
    to = (
        copy_targets(request.user, backup).filter(pk=int(wanted)).first()
        if wanted.isdigit()
        else None
    )
    if to is None:
        messages.error(request, "Choose a location you may write backups to.")
        return redirect(backup)
    try:
        copy = queue_copy(backup, to, by=request.user)
    except JobRefused as exc:
        messages.error(request, f"Backup {backup.name} was not copied: {exc}")
        return redirect(backup)
    messages.success(request, f"Copying {backup.name} to {to}; the copy is verified by checksum.")
    return redirect(copy)
