"""Clusters: register, detail with live health, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from backups.models import Backup, EtcdSnapshot, Restore

from .. import audit
from ..access import can, cluster_q, workspace_visible_q
from ..forms import ClusterForm
from ..kube import KubeconfigError
from ..models import Cluster, Workspace
from ..registration import register_cluster
from ..roles import Action
from .common import fragment, require


def _visible_cluster(request: HttpRequest, name: str) -> Cluster:
    queryset = Cluster.objects.filter(cluster_q(request.user, Action.VIEW)).select_related(
        "workspace"
    )
    return get_object_or_404(queryset, name=name)


@login_required
def cluster_register(request: HttpRequest, slug: str) -> HttpResponse:
    workspace = get_object_or_404(
        Workspace.objects.filter(workspace_visible_q(request.user)), slug=slug
    )
    require(request.user, Action.MANAGE, workspace, "register clusters")
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
        except ValidationError as exc:  # the server's rules for etcd endpoints, by field
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
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
    cluster = _visible_cluster(request, name)
    user = request.user
    context = {
        "cluster": cluster,
        "can_manage": can(user, Action.MANAGE, cluster),
        "recent_backups": Backup.objects.filter(cluster=cluster).select_related(
            "location", "created_by"
        )[:10],
        "recent_restores": Restore.objects.filter(target_cluster=cluster).select_related(
            "created_by"
        )[:10],
        "recent_snapshots": EtcdSnapshot.objects.filter(cluster=cluster).select_related(
            "created_by"
        )[:10],
        "etcd_policy": getattr(cluster, "etcd_policy", None) if cluster.has_etcd else None,
    }
    return render(request, "clusters/detail.html", context)


@login_required
@require_POST
def cluster_check_health(request: HttpRequest, name: str) -> HttpResponse:
    """Connect now; any viewer may refresh what the page says about the cluster."""
    cluster = _visible_cluster(request, name)
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
    cluster = _visible_cluster(request, name)
    require(request.user, Action.MANAGE, cluster, "remove clusters")
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
