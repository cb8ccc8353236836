"""Every API list costs the same number of queries with 1 row as with 50, for a
user whose rights come from a role, from a team and from a cluster grant."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.models import ApiToken
from backups.models import EtcdPolicy, RestoreItem, Schedule
from tests import factories
from workspaces import audit
from workspaces.roles import Role


def add_rows(w, n: int) -> None:
    """n more of everything the lists show, in the world's workspace."""
    auditors = Group.objects.get(name="auditors")
    for i in range(n):
        other = factories.workspace()
        other.grant(Role.OPERATOR, user=w.users["operator"])
        other.grant(Role.VIEWER, group=auditors)
        cluster = factories.cluster(w.workspace, namespaces=["a"])
        location = factories.location(w.workspace)
        backup = factories.backup(cluster, location, created_by=w.users["admin"])
        factories.backup(w.cluster, location)  # the grantee's cluster's too
        restore = factories.restore(backup, w.cluster, created_by=w.users["admin"])
        RestoreItem.objects.create(
            restore=w.restore, resource="configmaps", namespace="a", name=f"c{i}", outcome="created"
        )
        factories.snapshot(w.cluster, location)
        Schedule.objects.create(workspace=w.workspace, cluster=w.cluster, prefix=f"s{i}",
                                location=location, next_run_at=timezone.now())  # fmt: skip
        EtcdPolicy.objects.create(cluster=cluster, location=location)
        audit.record(w.users["admin"], "backed up", restore)
        audit.record(w.users["admin"], "backed up", w.backup)


LISTS = [
    "/api/v1/workspaces/",
    "/api/v1/clusters/",
    "/api/v1/locations/",
    "/api/v1/backups/",
    "/api/v1/restores/",
    "/api/v1/restores/{restore}/items/",
    "/api/v1/schedules/",
    "/api/v1/etcd-snapshots/",
    "/api/v1/etcd-policies/",
    "/api/v1/audit-events/",
]


def queries(client, url: str, secret: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200, response.content[:300]
    return len(captured), response.json()["count"]


@pytest.mark.parametrize("persona", ["operator", "viewer", "cluster_grantee"])
def test_every_list_costs_the_same_at_1_and_50_rows(world, client, persona):
    urls = [path.format(restore=world.restore.pk) for path in LISTS]
    secret = ApiToken.issue(world.users[persona], "q")[1]
    add_rows(world, 1)
    client.get(urls[0], HTTP_AUTHORIZATION=f"Bearer {secret}")  # the token's last use, once
    few = {url: queries(client, url, secret) for url in urls}
    add_rows(world, 49)
    many = {url: queries(client, url, secret) for url in urls}
    differ = {url: (few[url], many[url]) for url in urls if few[url][0] != many[url][0]}
    assert differ == {}, "url: ((queries, rows) at 1, (queries, rows) at 50)"
    grown = {url for url in urls if many[url][1] > few[url][1]}
    # The grantee sees one cluster: its snapshots and the restore's items grow.
    expected = set(urls) if persona != "cluster_grantee" else {
        url for url in urls if "items" in url or "snapshots" in url or "schedules" in url
        or "backups" in url or "audit" in url
    }  # fmt: skip
    assert expected <= grown, sorted(set(urls) - grown)
