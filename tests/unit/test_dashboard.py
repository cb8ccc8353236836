"""The dashboard answers "am I protected?": recovery points against schedules, what no
schedule covers, success rates, failures, next runs, storage, charts; only what the
user may see, and in the same number of queries for 1 cluster as for 50."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backups import protection
from backups.models import EtcdPolicy, Schedule, Status
from locations.models import BackupLocation
from tests import factories
from workspaces.models import Cluster
from workspaces.roles import Role

NOW = timezone.now()


def finished(hours_ago: float, seconds: float = 30, **extra) -> dict:
    end = NOW - timedelta(hours=hours_ago)
    return {"started_at": end - timedelta(seconds=seconds), "finished_at": end, **extra}


def daily(cluster, loc, **extra) -> Schedule:
    return Schedule.objects.create(
        workspace=cluster.workspace,
        cluster=cluster,
        prefix=f"daily-{cluster.name}",
        location=loc,
        preset=Schedule.Preset.CUSTOM,
        cron="0 2 * * *",
        next_run_at=NOW + timedelta(hours=3),
        **extra,
    )


@pytest.fixture
def estate(db):
    """fresh: backed up 2 h ago, daily; stale: last good backup 3 days ago, daily;
    bare: no schedule; partial: a schedule of namespace shop only."""
    ws = factories.workspace("Shop")
    loc = factories.location(ws, "store", status=BackupLocation.Status.AVAILABLE)
    fresh, stale, bare, partial = (
        factories.cluster(ws, name, namespaces=["default", "shop", "kube-system"])
        for name in ("fresh", "stale", "bare", "partial")
    )
    factories.backup(fresh, loc, size_bytes=1000, **finished(2, seconds=20))
    factories.backup(fresh, loc, size_bytes=3000, **finished(26, seconds=40))
    factories.backup(stale, loc, size_bytes=2000, **finished(72))
    factories.backup(stale, loc, status=Status.FAILED, error="store full", **finished(1))
    daily(fresh, loc)
    daily(stale, loc)
    daily(partial, loc, include_namespaces=["shop"])
    Cluster.objects.filter(pk=fresh.pk).update(etcd_endpoint="https://127.0.0.1:9")
    EtcdPolicy.objects.create(
        cluster=fresh, location=loc, cron="0 * * * *", next_run_at=NOW + timedelta(minutes=20)
    )
    factories.snapshot(fresh, loc, status=Status.COMPLETED, size_bytes=500, **finished(0.5))
    admin = factories.user("boss")
    ws.grant(Role.ADMIN, user=admin)
    return {"ws": ws, "loc": loc, "admin": admin, "clusters": (fresh, stale, bare, partial)}


def by_name(user):
    return {p.cluster.name: p for p in protection.cluster_protection(user, NOW)}


def test_recovery_points_are_measured_against_the_schedule(estate):
    rows = by_name(estate["admin"])
    assert rows["fresh"].backup.state == "ok"
    assert rows["fresh"].backup.interval == timedelta(days=1)
    assert round(rows["fresh"].backup.age / timedelta(hours=1)) == 2
    assert rows["fresh"].etcd.state == "ok" and rows["fresh"].etcd.interval == timedelta(hours=1)
    assert rows["stale"].backup.state == "late"  # the failed backup 1 h ago does not count
    assert round(rows["stale"].backup.age / timedelta(hours=1)) == 72
    assert rows["stale"].etcd is None  # no etcd endpoint
    assert rows["bare"].state == "unscheduled"
    assert rows["partial"].backup.state == "missing"


def test_it_lists_what_no_schedule_covers(estate):
    rows = by_name(estate["admin"])
    assert rows["partial"].uncovered_namespaces == ["default", "kube-system"]
    assert rows["fresh"].uncovered_namespaces == []
    assert rows["bare"].uncovered_namespaces == []  # the whole cluster is listed instead


def test_success_rates_failures_next_runs_and_storage(estate):
    admin = estate["admin"]
    rates = protection.success_rates(admin, NOW)
    assert rates["day"] == {"ok": 1, "total": 2, "percent": 50}
    assert rates["week"] == {"ok": 3, "total": 4, "percent": 75}
    assert [b.error for b in protection.recent_failures(admin, NOW)] == ["store full"]
    fresh = estate["clusters"][0]
    factories.snapshot(fresh, estate["loc"], status=Status.FAILED, error="etcd gone")
    assert [r.error for r in protection.recent_failures(admin, NOW)] == ["etcd gone", "store full"]
    runs = protection.next_runs(admin)
    assert runs[0]["what"] == "etcd snapshot" and runs[0]["target"] == "fresh"
    assert len(runs) == 4
    (loc,) = protection.storage(admin)
    assert (loc.backup_bytes, loc.etcd_bytes, loc.used_bytes) == (6000, 500, 6500)


def test_the_page_shows_the_table_and_charts(estate, login):
    page = login(estate["admin"]).get(reverse("dashboard")).content.decode()
    assert 'data-cluster="stale"' in page and "Late" in page and "Not scheduled" in page
    assert page.count("<svg") == 2 and "Backup size" in page and "Backup duration" in page
    assert "<code>kube-system</code>" in page
    assert "UTC" in page  # dates say their time zone
    assert "style=" not in page and "<script>" not in page  # the CSP allows neither


def test_banners_for_unavailable_locations_and_unreachable_clusters(estate, login):
    BackupLocation.objects.filter(pk=estate["loc"].pk).update(
        status=BackupLocation.Status.UNAVAILABLE, status_message="bucket gone"
    )
    Cluster.objects.filter(name="stale").update(
        health=Cluster.Health.UNREACHABLE, health_message="connection refused"
    )
    page = login(estate["admin"]).get(reverse("dashboard")).content.decode()
    assert "is unavailable: bucket gone" in page
    assert "is unreachable: connection refused" in page


def test_a_single_cluster_grantee_sees_only_that_cluster(estate, login):
    from guardian.shortcuts import assign_perm

    grantee = factories.user("grantee")
    assign_perm("view_cluster", grantee, estate["clusters"][1])
    assert list(by_name(grantee)) == ["stale"]
    assert protection.success_rates(grantee, NOW)["week"]["total"] == 2
    (loc,) = protection.storage(grantee) or (None,)
    assert loc is None  # no grant on the location
    assert [r["target"] for r in protection.next_runs(grantee)] == ["stale"]
    page = login(grantee).get(reverse("dashboard")).content.decode()
    assert "fresh" not in page and "partial" not in page


def test_an_outsider_sees_nothing(estate):
    outsider = factories.user("nobody")
    assert by_name(outsider) == {}
    assert protection.success_rates(outsider, NOW)["week"]["total"] == 0


def grow(admin, n: int) -> None:
    """n workspaces with a scheduled cluster with etcd, two backups, a snapshot."""
    for _ in range(n):
        ws = factories.workspace()
        loc = factories.location(ws)
        c = factories.cluster(ws, namespaces=["a", "b"], etcd_endpoint="https://127.0.0.1:9")
        factories.backup(c, loc, size_bytes=10, **finished(3))
        factories.backup(c, loc, status=Status.FAILED, **finished(1))
        factories.snapshot(c, loc, status=Status.COMPLETED, size_bytes=5, **finished(1))
        daily(c, loc, include_namespaces=["a"])
        EtcdPolicy.objects.create(cluster=c, location=loc, next_run_at=NOW)
        ws.grant(Role.VIEWER, user=admin)


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


# With the session and user lookups: the dashboard's sections cost 12 queries in all.
QUERIES = {"dashboard": 14, "schedule_list": 5}


@pytest.mark.parametrize("url_name", sorted(QUERIES))
def test_constant_queries_at_1_and_50(db, login, url_name):
    viewer = factories.user("watcher")
    client = login(viewer)
    grow(viewer, 1)
    assert queries(client, reverse(url_name)) == QUERIES[url_name]
    grow(viewer, 49)
    assert queries(client, reverse(url_name)) == QUERIES[url_name]
