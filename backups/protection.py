"""The dashboard's answer to "am I protected?", for one user, in a constant number
of queries whatever the number of clusters, schedules, backups or locations.

Everything is read through ``restrict(user)``: a single-cluster grantee sees the
recovery point of that cluster only, and of schedules only those of that cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from locations.models import BackupLocation
from workspaces.models import Cluster

from . import cron
from .engine.filters import NamespaceFilter
from .models import Backup, EtcdPolicy, EtcdSnapshot, Schedule, Status

# A recovery point is late once it is older than its schedule's interval times this
# (a run takes time; one missed firing is late, not a heartbeat's jitter).
GRACE = 1.5
FAILED = (Status.FAILED, Status.PARTIALLY_FAILED)


@dataclass
class RecoveryPoint:
    """How old the newest good copy of one kind (resources or etcd) is, against the
    interval its schedule promises."""

    last: datetime | None
    interval: timedelta | None  # None: nothing schedules it
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return self.now - self.last if self.last else None

    @property
    def state(self) -> str:
        """ok, late, missing (scheduled, never made) or unscheduled."""
        if self.interval is None:
            return "unscheduled"
        if self.last is None:
            return "missing"
        return "ok" if self.age <= self.interval * GRACE else "late"


@dataclass
class ClusterProtection:
    cluster: Cluster
    backup: RecoveryPoint
    etcd: RecoveryPoint | None  # None: the cluster has no etcd endpoint
    uncovered_namespaces: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        states = {self.backup.state} | ({self.etcd.state} if self.etcd else set())
        for worst in ("unscheduled", "missing", "late"):
            if worst in states:
                return worst
        return "ok"


def interval_of(expression: str, now: datetime) -> timedelta | None:
    """The longest gap between the next few runs of a cron expression (what a
    recovery point may be old at worst), or None when it never runs."""
    runs = cron.next_runs(expression, now, 8) if expression else []
    if len(runs) < 2:
        return None
    return max(later - earlier for earlier, later in zip(runs, runs[1:], strict=False))


def _newest(queryset, cluster_ref: str = "pk"):
    """A subquery: the newest finished_at of ``queryset`` for the outer cluster.
    Rows without one are left out: PostgreSQL sorts NULL first in a descending order
    (SQLite last), so one such row would hide every real backup there."""
    return Subquery(
        queryset.filter(
            cluster=OuterRef(cluster_ref), status=Status.COMPLETED, finished_at__isnull=False
        )
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )


def cluster_protection(user, now: datetime) -> list[ClusterProtection]:
    """Per visible cluster: its recovery points and the namespaces no schedule takes.
    Three queries: clusters (with their newest good backup and snapshot), schedules,
    etcd policies."""
    clusters = list(
        Cluster.objects.restrict(user)
        .select_related("workspace")
        .annotate(
            last_backup=_newest(Backup.objects.restrict(user)),
            last_snapshot=_newest(EtcdSnapshot.objects.restrict(user)),
        )
        .order_by("workspace__name", "name")
    )
    schedules = list(
        Schedule.objects.restrict(user).filter(
            paused=False, workspace__in={c.workspace_id for c in clusters}
        )
    )
    policies = {
        p.cluster_id: p
        for p in EtcdPolicy.objects.restrict(user).filter(
            cluster__in=[c.pk for c in clusters], enabled=True
        )
    }
    result = []
    for c in clusters:
        mine = [
            s
            for s in schedules
            if s.cluster_id == c.pk or (s.cluster_id is None and s.workspace_id == c.workspace_id)
        ]
        intervals = [i for s in mine if (i := interval_of(s.expression, now))]
        policy = policies.get(c.pk)
        etcd = None
        if c.has_etcd:
            etcd = RecoveryPoint(
                c.last_snapshot, interval_of(policy.cron, now) if policy else None, now
            )
        filters = [NamespaceFilter.of(s.include_namespaces, s.exclude_namespaces) for s in mine]
        uncovered = [ns for ns in c.namespaces or [] if not any(f.allows(ns) for f in filters)]
        result.append(
            ClusterProtection(
                cluster=c,
                backup=RecoveryPoint(c.last_backup, min(intervals) if intervals else None, now),
                etcd=etcd,
                uncovered_namespaces=uncovered if mine else [],
            )
        )
    return result


def success_rates(user, now: datetime) -> dict:
    """Finished backups in the last 24 hours and 7 days, and how many succeeded: one query."""
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    done = Q(status__in=[Status.COMPLETED, *FAILED])
    good = Q(status=Status.COMPLETED)
    counts = (
        Backup.objects.restrict(user)
        .filter(done, finished_at__gte=week)
        .aggregate(
            week=Count("pk"),
            week_ok=Count("pk", filter=good),
            day=Count("pk", filter=Q(finished_at__gte=day)),
            day_ok=Count("pk", filter=good & Q(finished_at__gte=day)),
        )
    )

    def rate(ok: int, total: int) -> dict:
        return {"ok": ok, "total": total, "percent": round(100 * ok / total) if total else None}

    return {
        "day": rate(counts["day_ok"], counts["day"]),
        "week": rate(counts["week_ok"], counts["week"]),
    }


def recent_failures(user, now: datetime, limit: int = 8) -> list:
    """Failed or partly failed backups and etcd snapshots of the last 7 days, newest
    first: two queries."""
    rows = []
    for model in (Backup, EtcdSnapshot):
        rows += (
            model.objects.restrict(user)
            .filter(status__in=FAILED, created_at__gte=now - timedelta(days=7))
            .select_related("location")
            .order_by("-created_at")[:limit]
        )
    return sorted(rows, key=lambda r: r.created_at, reverse=True)[:limit]


def next_runs(user, limit: int = 8) -> list[dict]:
    """The next firings of schedules and etcd policies, soonest first: two queries."""
    schedules = (
        Schedule.objects.restrict(user)
        .filter(paused=False, next_run_at__isnull=False)
        .select_related("cluster", "workspace")
        .order_by("next_run_at")[:limit]
    )
    policies = (
        EtcdPolicy.objects.restrict(user)
        .filter(enabled=True, next_run_at__isnull=False)
        .select_related("cluster")
        .order_by("next_run_at")[:limit]
    )
    runs = [
        {
            "at": s.next_run_at,
            "what": f"backup {s.prefix}",
            "target": s.cluster.name if s.cluster_id else f"every cluster of {s.workspace.name}",
            "url": s.get_absolute_url(),
        }
        for s in schedules
    ] + [
        {
            "at": p.next_run_at,
            "what": "etcd snapshot",
            "target": p.cluster.name,
            "url": p.cluster.get_absolute_url() + "etcd/",
        }
        for p in policies
    ]
    return sorted(runs, key=lambda r: r["at"])[:limit]


def _total(queryset) -> Subquery:
    """A subquery: the bytes of the completed rows of ``queryset`` in the outer location."""
    sums = (
        queryset.filter(location=OuterRef("pk"), status=Status.COMPLETED)
        .order_by()
        .values("location")
        .annotate(total=Sum("size_bytes"))
        .values("total")
    )
    return Coalesce(Subquery(sums, output_field=IntegerField()), Value(0))


def storage(user) -> list[BackupLocation]:
    """Each visible location with the bytes of the backups and snapshots the user may
    see in it (``backup_bytes``, ``etcd_bytes``, ``used_bytes``): one query."""
    locations = (
        BackupLocation.objects.restrict(user)
        .annotate(
            backup_bytes=_total(Backup.objects.restrict(user)),
            etcd_bytes=_total(EtcdSnapshot.objects.restrict(user)),
        )
        .order_by("name")
    )
    rows = list(locations)
    for loc in rows:
        loc.used_bytes = loc.backup_bytes + loc.etcd_bytes
    return rows


def history(user, now: datetime, days: int = 30, limit: int = 300) -> list[Backup]:
    """Completed backups of the last ``days``, oldest first, for the charts: one query."""
    recent = (
        Backup.objects.restrict(user)
        .filter(status=Status.COMPLETED, finished_at__gte=now - timedelta(days=days))
        .exclude(started_at=None)
        .only("pk", "name", "size_bytes", "started_at", "finished_at", "created_at")
        .order_by("-finished_at")[:limit]
    )
    return list(reversed(recent))
