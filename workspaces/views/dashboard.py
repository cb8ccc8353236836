"""The landing page: what the user can see, at a glance."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from backups.models import Backup, Restore

from ..access import clusters_for, workspaces_for
from ..models import AuditEvent
from .common import with_cluster_counts


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    workspaces = with_cluster_counts(user, workspaces_for(user)).order_by("name")
    clusters = clusters_for(user).select_related("workspace")
    health = {row["health"]: row["n"] for row in clusters.values("health").annotate(n=Count("id"))}
    context = {
        "workspaces": workspaces[:20],
        "clusters": clusters[:20],
        "cluster_health": health,
        "recent_backups": Backup.objects.restrict(user)
        .select_related("location", "created_by")
        .order_by("-created_at")[:10],
        "recent_restores": Restore.objects.restrict(user).order_by("-created_at")[:5],
        "recent_events": AuditEvent.objects.restrict(user).order_by("-at")[:10],
    }
    return render(request, "workspaces/dashboard.html", context)
