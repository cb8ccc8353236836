"""Restores: the wizard (options, preview, confirm), the detail with per-item results."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backups.engine.storage.base import StorageError
from backups.engine.storage.layout import Layout
from backups.engine.velero import reader
from locations.providers import get_provider
from workspaces.access import can, clusters_for
from workspaces.models import Cluster
from workspaces.roles import Action
from workspaces.views.common import fetch, fragment, page_of, visible_cluster

from .. import browse
from ..forms import RestoreForm
from ..jobs import JobRefused, RestoreJob, confirm_preview, rerun_preview, start_restore
from ..models import Backup, Restore, RestoreItem
from ..naming import mapping_warnings


def _restore(request: HttpRequest, pk: int, **lookup) -> Restore:
    restores = Restore.objects.select_related(
        "created_by", "target_cluster", "backup", "modifier_set"
    )
    return fetch(request, restores, pk=pk, **lookup)


def check_target(user, cluster: Cluster) -> None:
    """Restoring INTO a cluster needs the restore permission on that cluster."""
    if not can(user, Action.RESTORE, cluster):
        raise PermissionDenied(f"You may not restore into {cluster.name}.")


def backup_namespaces(backup: Backup) -> tuple[list[str], str]:
    """The namespaces the backup holds, as the wizard offers them, and why they are only
    the ones it asked for when its contents cannot be read ('' when they can)."""
    try:
        with get_provider(backup.location) as provider:
            return reader.namespaces(provider, Layout(backup.location.prefix), backup.name), ""
    except (StorageError, reader.ArchiveError) as exc:
        return list(backup.include_namespaces), f"Cannot read the backup's contents: {exc}"


def _preview(request: HttpRequest, pk: int) -> Restore:
    """A preview the user may see, whose target (while it exists) they may restore into."""
    preview = _restore(request, pk, is_preview=True)
    if preview.target_cluster is not None:
        check_target(request.user, preview.target_cluster)
    return preview


@login_required
def restore_wizard(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose the target and options, then see a dry-run preview before confirming.

    From the content browser: chosen items (POSTed with ``action=choose``), or
    ``?namespace=`` or ``?kind=`` to start with that filter filled in."""
    backup = fetch(request, Backup.objects.select_related("location"), pk=pk)
    if not clusters_for(request.user, Action.RESTORE).exists():
        raise PermissionDenied("Your role does not allow restoring into any cluster.")
    found, problem = backup_namespaces(backup)
    chosen, refusal, values = [], "", request.POST.getlist("item")
    if values:
        chosen, refusal = _chosen(values, backup)
    choosing = request.method == "POST" and request.POST.get("action") == "choose"
    if choosing and not chosen and not refusal:
        refusal = "No item was ticked."
    bound = request.POST if request.method == "POST" and not choosing else None
    form = RestoreForm(
        bound, user=request.user, backup=backup, namespaces=found,
        initial=_initial(request, found),
    )  # fmt: skip
    if not refusal and bound is not None and form.is_valid():
        target = form.cleaned_data["target_cluster"]
        check_target(request.user, target)
        preview = request.POST.get("action") != "restore"
        options = form.options()
        options["option_warnings"] = mapping_warnings(
            options["namespace_mapping"], found, options["include_namespaces"]
        )
        options["chosen_items"] = chosen
        try:
            restore = start_restore(backup, target, by=request.user, preview=preview, **options)
        except JobRefused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(restore)
    return render(
        request,
        "backups/restore_wizard.html",
        {"backup": backup, "form": form, "problem": problem, "refusal": refusal,
         "chosen": chosen, "chosen_values": [browse.item_value(*item) for item in chosen]},
        status=400 if refusal else 200,
    )  # fmt: skip


def _chosen(values: list[str], backup: Backup) -> tuple[list, str]:
    """(the chosen items, checked against the backup's resource list; a refusal or "")."""
    try:
        return browse.checked_items(backup, values), ""
    except ValueError as exc:
        return [], str(exc)
    except (StorageError, reader.ArchiveError) as exc:
        return [], f"Cannot read the backup's contents: {exc}"


def _initial(request: HttpRequest, namespaces: list[str]) -> dict:
    """The wizard's first values from the content browser's links."""
    initial = {}
    if (namespace := request.GET.get("namespace", "")) in namespaces and namespace:
        initial["include_namespaces"] = [namespace]
    if kind := request.GET.get("kind", ""):
        initial["include_resources"] = browse.kind_filter(kind[:300])
    return initial


@login_required
@require_POST
def restore_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """Run for real what a finished preview showed, with the same options, once."""
    preview = _preview(request, pk)
    try:
        restore, started = confirm_preview(preview, by=request.user)
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect(preview)
    if started:
        messages.success(request, f"Restore {restore.name} started.")
    else:
        messages.info(request, f"This preview was already confirmed: restore {restore.name}.")
    return redirect(restore)


@login_required
@require_POST
def restore_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    """A stale (or any finished) preview, run again with the same options."""
    preview = _preview(request, pk)
    try:
        fresh = rerun_preview(preview, by=request.user)
    except JobRefused as exc:
        messages.error(request, str(exc))
        return redirect(preview)
    return redirect(fresh)


def _items(request: HttpRequest, restore: Restore):
    items = restore.items.restrict(request.user)
    outcome = request.GET.get("outcome", "")
    if outcome in RestoreItem.Outcome.values:
        items = items.filter(outcome=outcome)
    if namespace := request.GET.get("namespace", ""):
        items = items.filter(namespace=namespace)
    if query := request.GET.get("q", "").strip():
        items = items.filter(name__icontains=query) | items.filter(resource__icontains=query)
    return page_of(request, items.order_by("id"), size=100)


@login_required
def restore_detail(request: HttpRequest, pk: int) -> HttpResponse:
    restore = _restore(request, pk)
    context = {
        **RestoreJob.page_context(request.user, restore),
        "page": _items(request, restore),
        "outcomes": RestoreItem.Outcome.choices,
    }
    return render(request, fragment(request, "backups/restore_detail.html", "items"), context)


@login_required
def cluster_restores(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name)
    restores = cluster.restores.restrict(request.user).select_related("created_by")
    return render(
        request,
        "backups/cluster_restores.html",
        {"cluster": cluster, "page": page_of(request, restores)},
    )
