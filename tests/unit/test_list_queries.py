"""List pages cost the same number of SQL queries for 1 row as for 50, and for
1 grant as for 50 (rows come through one permission-filtered queryset)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import factories
from workspaces.roles import Role

LIST_PAGES = [
    "dashboard",
    "workspace_list",
    "location_list",
    "backup_list",
    "restore_list",
    "etcd_snapshot_list",
]


def populate(viewer, n: int) -> None:
    """n workspaces, each granted to the viewer in a different way (user role, team
    role, cluster-only grant), each with a cluster, location, backup, restore, snapshot."""
    from guardian.shortcuts import assign_perm

    for i in range(n):
        ws = factories.workspace()
        cluster = factories.cluster(ws)
        loc = factories.location(ws)
        backup = factories.backup(cluster, loc, created_by=viewer)
        factories.restore(backup, cluster, created_by=viewer)
        factories.snapshot(cluster, loc)
        factories.user()  # an unrelated user with nothing, to prove rows don't leak
        kind = i % 3
        if kind == 0:
            ws.grant(Role.VIEWER, user=viewer)
        elif kind == 1:
            ws.grant(Role.OPERATOR, group=factories.team(None, viewer))
        else:
            assign_perm("view_cluster", viewer, cluster)
            assign_perm("view_backuplocation", viewer, loc)


def count_queries(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content


@pytest.mark.parametrize("page", LIST_PAGES)
def test_it_runs_a_constant_number_of_queries(db, client, page, django_assert_num_queries):
    viewer = factories.user("many")
    client.force_login(viewer)
    url = reverse(page)
    populate(viewer, 1)
    one, _ = count_queries(client, url)
    populate(viewer, 49)
    with django_assert_num_queries(one):
        response = client.get(url)
    assert response.status_code == 200
    # And the page really lists more rows now (not an empty page that is cheap).
    assert response.content.count(b"<tr") > 10 or page == "dashboard"


def test_it_keeps_the_workspace_page_constant(db, client, django_assert_num_queries):
    admin = factories.user("boss")
    client.force_login(admin)
    ws = factories.workspace("Big")
    ws.grant(Role.ADMIN, user=admin)
    factories.cluster(ws)
    url = reverse("workspace_detail", args=[ws.slug])
    one, _ = count_queries(client, url)
    for _ in range(49):
        factories.cluster(ws)
        ws.grant(Role.VIEWER, user=factories.user())
        ws.grant(Role.OPERATOR, group=factories.team())
    with django_assert_num_queries(one):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("page", ["workspace_detail", "workspace_audit"])
def test_it_keeps_a_single_cluster_grantees_workspace_pages_constant(
    db, client, page, django_assert_num_queries
):
    """The pages a cluster grant shows cost the same for 1 run, event and cluster as
    for 50 (the runs' backups and skip records are filtered in a fixed few queries)."""
    from django.utils import timezone
    from guardian.shortcuts import assign_perm

    from backups.models import BackupRun
    from workspaces import audit

    grantee = factories.user("partial")
    client.force_login(grantee)
    ws = factories.workspace("Split")
    loc = factories.location(ws)

    def populate(n: int) -> None:
        for _ in range(n):
            mine, other = factories.cluster(ws), factories.cluster(ws)
            assign_perm("view_cluster", grantee, mine)
            run = BackupRun.objects.create(
                workspace=ws,
                started_at=timezone.now(),
                skipped=[{"cluster": other.name, "reason": "unreachable"}],
            )
            for cluster in (mine, other):
                audit.record(None, "backed up", factories.backup(cluster, loc, run=run))

    populate(1)
    url = reverse(page, args=[ws.slug])
    one, content = count_queries(client, url)
    populate(19)
    with django_assert_num_queries(one):
        response = client.get(url)
    assert response.status_code == 200
    assert b"unreachable" not in response.content  # the skips were of other clusters


# Each list with its search, filters and sort in the URL (issue #15, Done-when 2).
FILTERED = [
    ("backup_list", "q=manual&status=completed&sort=size&from=2000-01-01&to=2999-12-31"),
    ("backup_list", "location=nowhere&sort=expires"),
    ("restore_list", "q=restore&status=pending&sort=name"),
    ("etcd_snapshot_list", "status=pending&sort=revision&from=2000-01-01"),
    ("location_list", "q=loc&provider=filesystem&sort=validated"),
    ("schedule_list", "q=nightly&state=False&sort=last"),
]


def populate_schedules(viewer, n: int) -> None:
    from backups.models import Schedule

    for _ in range(n):
        ws = factories.workspace()
        cluster = factories.cluster(ws)
        loc = factories.location(ws)
        Schedule.objects.create(workspace=ws, cluster=cluster, prefix="nightly", location=loc)
        ws.grant(Role.VIEWER, user=viewer)


@pytest.mark.parametrize(("page", "query"), FILTERED)
def test_a_filtered_list_costs_the_same_at_1_and_50_rows(
    db, client, page, query, django_assert_num_queries
):
    viewer = factories.user("filterer")
    client.force_login(viewer)
    url = f"{reverse(page)}?{query}"
    fill = populate_schedules if page == "schedule_list" else populate
    fill(viewer, 1)
    one, _ = count_queries(client, url)
    fill(viewer, 49)
    with django_assert_num_queries(one):
        response = client.get(url)
    assert response.status_code == 200


def test_the_filtered_audit_trail_costs_the_same_at_1_and_50_events(
    db, client, django_assert_num_queries
):
    from workspaces import audit

    admin = factories.user("auditor")
    client.force_login(admin)
    ws = factories.workspace("Audited")
    ws.grant(Role.ADMIN, user=admin)
    loc = factories.location(ws)
    cluster = factories.cluster(ws)
    url = reverse("workspace_audit", args=[ws.slug]) + "?q=backed&type=backup&sort=oldest"
    audit.record(admin, "backed up", factories.backup(cluster, loc))
    one, _ = count_queries(client, url)
    for _ in range(49):
        audit.record(admin, "backed up", factories.backup(cluster, loc))
    with django_assert_num_queries(one):
        response = client.get(url)
    assert response.content.count(b"backed up") >= 50
