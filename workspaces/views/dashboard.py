"""The landing page: am I protected? Recovery points, coverage, failures, what runs
next, storage, and charts, in a constant number of queries (backups/protection.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from backups import protection
from backups.charts import line_chart, seconds_text, size_text
from locations.models import BackupLocation

from ..access import workspaces_for
from ..models import AuditEvent, Cluster
from .common import with_cluster_counts

FAILURES_SHOWN = 8


def charts(backups: list) -> list:
    """Backup size and duration over time, for the completed backups given."""
    made = [
        line_chart(
            "Backup size",
            backups,
            when=lambda b: b.finished_at,
            value=lambda b: b.size_bytes,
            fmt=size_text,
            name=lambda b: b.name,
        ),
        line_chart(
            "Backup duration",
            backups,
            when=lambda b: b.finished_at,
            value=lambda b: b.duration.total_seconds() if b.duration else None,
            fmt=seconds_text,
            name=lambda b: b.name,
        ),
    ]
    return [c for c in made if c]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    now = timezone.now()
    clusters = protection.cluster_protection(user, now)
    locations = protection.storage(user)
    context = {
        "now": now,
        "grace": protection.GRACE,
        "workspaces": with_cluster_counts(user, workspaces_for(user)).order_by("name")[:20],
        "protection": clusters,
        "unscheduled": [p.cluster for p in clusters if p.backup.state == "unscheduled"],
        "uncovered": [p for p in clusters if p.uncovered_namespaces],
        "unreachable": [
            p.cluster for p in clusters if p.cluster.health == Cluster.Health.UNREACHABLE
        ],
        "unavailable": [
            loc for loc in locations if loc.status == BackupLocation.Status.UNAVAILABLE
        ],
        "rates": protection.success_rates(user, now),
        "failures": protection.recent_failures(user, now, FAILURES_SHOWN),
        "failure_limit": FAILURES_SHOWN,
        "next_runs": protection.next_runs(user),
        "locations": locations,
        "charts": charts(protection.history(user, now)),
        "recent_events": AuditEvent.objects.restrict(user).order_by("-at")[:8],
    }
    return render(request, "workspaces/dashboard.html", context)
