"""One cluster's backups: create, watch, browse, download, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from backups.engine.velero import reader
from backups.engine.velero.reader import ArchiveError
from locations.providers import get_provider
from workspaces.access import can
from workspaces.kube import explain, list_namespaces
from workspaces.roles import Action
from workspaces.views.common import fetch, page_of, require, visible_cluster

from .. import browse
from ..forms import BackupForm
from ..jobs import BackupJob, JobRefused, delete_backup, start_backup
from ..models import Backup
from .download import stream_object


def _backup(request: HttpRequest, pk: int) -> Backup:
    queryset = Backup.objects.select_related("location", "cluster", "workspace", "created_by")
    return fetch(request, queryset, pk=pk)


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
    note = ""
    try:
        namespaces = list_namespaces(cluster.kubeconfig)
    except Exception as exc:  # the form still works with the last known list
        namespaces = cluster.namespaces
        note = f"Could not read the namespaces now ({explain(exc, cluster.api_server)}); showing the last known ones."
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
        },
    )


@login_required
def backup_contents(request: HttpRequest, pk: int) -> HttpResponse:
    """Results and the resource list, read from storage (loaded after the page)."""
    backup = _backup(request, pk)
    context = {"backup": backup}
    provider = get_provider(backup.location)
    layout = Layout(backup.location.prefix)
    try:
        context["results"] = reader.results(provider, layout, backup.name)
        context["contents"] = reader.contents(provider, layout, backup.name)
    except (StorageError, ArchiveError) as exc:
        context["storage_error"] = str(exc)
    finally:
        provider.close()
    return render(request, "backups/detail.html#contents", context)


@login_required
def backup_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One backed-up object as YAML (Secrets' values masked)."""
    backup = _backup(request, pk)
    type_name = request.GET.get("type", "")
    namespace = request.GET.get("namespace", "")
    item = request.GET.get("name", "")
    provider = get_provider(backup.location)
    try:
        obj = reader.find_item(
            provider, Layout(backup.location.prefix), backup.name, type_name, namespace, item
        )
    except (StorageError, ArchiveError) as exc:
        obj, error, missing = None, f"Cannot read the archive: {exc}", False
    else:
        error, missing = ("", False) if obj else ("This object is not in the archive.", True)
    finally:
        provider.close()
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
