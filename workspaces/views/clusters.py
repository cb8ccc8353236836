"""Clusters: register, detail with live health, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from backups.models import EtcdPolicy

from .. import audit
from ..access import can
from ..forms import ClusterEditForm, ClusterForm
from ..kube import KubeconfigError
from ..models import Cluster
from ..registration import register_cluster, update_cluster
from ..roles import Action
from .common import add_errors, fragment, visible_cluster, visible_workspace


@login_required
def cluster_register(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = visible_workspace(request, slug, Action.MANAGE, "register clusters")
    form = ClusterForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            cluster = register_cluster(
                workspace=workspace,
                by=request.user,
                **{key: data[key] for key in ClusterForm.base_fields},
            )
        except KubeconfigError as exc:
            form.add_error("kubeconfig", str(exc))
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if cluster.health == Cluster.Health.HEALTHY:
                messages.success(
                    request, f"Cluster {cluster} registered: {cluster.health_message}."
                )
            else:
                messages.warning(
                    request,
                    f"Cluster {cluster} registered, but it is not reachable: {cluster.health_message}",
                )
            return redirect(cluster)
    return render(request, "clusters/register.html", {"form": form, "workspace": workspace})


@login_required
def cluster_detail(request: HttpRequest, name: str) -> HttpResponse:
    cluster = visible_cluster(request, name)
    user = request.user
    context = {
        "cluster": cluster,
        "can_manage": can(user, Action.MANAGE, cluster),
        "can_grant": can(user, Action.MANAGE, cluster.workspace),
        "recent_backups": cluster.backups.restrict(user).select_related("location", "created_by")[
            :10
        ],
        "recent_restores": cluster.restores.restrict(user).select_related("created_by")[:10],
        "recent_snapshots": cluster.etcd_snapshots.restrict(user).select_related("created_by")[:10],
        "etcd_policy": EtcdPolicy.objects.restrict(user).filter(cluster=cluster).first()
        if cluster.has_etcd
        else None,
    }
    return render(request, "clusters/detail.html", context)


@login_required
def cluster_edit(request: HttpRequest, name: str) -> HttpResponse:
    """Replace the kubeconfig, the etcd endpoint and certificates (Admins)."""
    cluster = visible_cluster(request, name, Action.MANAGE, "change clusters")
    form = ClusterEditForm.for_cluster(cluster, request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            changed = update_cluster(cluster, by=request.user, **form.cleaned_data)
        except KubeconfigError as exc:
            form.add_error("kubeconfig", str(exc))
        except ValidationError as exc:
            cluster.refresh_from_db()
            add_errors(form, exc)
        else:
            if changed:
                fields = ", ".join(f.replace("_", " ") for f in changed)
                messages.success(request, f"Cluster {cluster} changed: {fields}.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect(cluster)
    return render(request, "clusters/edit.html", {"cluster": cluster, "form": form})


@login_required
@require_POST
def cluster_check_health(request: HttpRequest, name: str) -> HttpResponse:
    """Connect now; any viewer may refresh what the page says about the cluster."""
    cluster = visible_cluster(request, name)
    health = cluster.check_health()
    if not request.htmx:
        if health.reachable:
            messages.success(request, f"{cluster} is healthy: {health.message}.")
        else:
            messages.error(request, f"{cluster} is not reachable: {health.message}")
        return redirect(cluster)
    return render(
        request,
        fragment(request, "clusters/detail.html", "health"),
        {"cluster": cluster, "checked_now": True},
    )


@login_required
def cluster_delete(request: HttpRequest, name: str) -> HttpResponse:
    """Asks for confirmation first; backups stay (they keep the cluster's name)."""
    cluster = visible_cluster(request, name, Action.MANAGE, "remove clusters")
    if request.method == "POST":
        if request.POST.get("confirm_name") != cluster.name:
            messages.error(request, "Type the cluster's name to confirm.")
            return redirect("cluster_delete", name=cluster.name)
        workspace = cluster.workspace
        try:
            cluster.delete()
        except ProtectedError:
            messages.error(request, f"{cluster} still has schedules or policies that need it.")
            return redirect(cluster)
        audit.record(request.user, "removed", cluster, workspace=workspace)
        messages.success(request, f"Cluster {name} removed from the console. Its backups remain.")
        return redirect(workspace)
    return render(request, "clusters/delete.html", {"cluster": cluster})
