"""A restore's per-item results: saved in bulk, and paged on the restore page at a number
of SQL queries that does not grow with the restore (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backups.engine.restore.run import ItemResult
from backups.jobs.restore import RestoreJob
from backups.models import RestoreItem
from tests import factories
from workspaces.roles import Role


def results(n: int, outcome: str = "created") -> list[ItemResult]:
    return [
        ItemResult("configmaps", f"ns-{i % 7}", f"cm-{i:05d}", outcome, "" if i % 3 else "why")
        for i in range(n)
    ]


@pytest.fixture
def restore(db):
    ws = factories.workspace()
    cluster = factories.cluster(ws)
    backup = factories.backup(cluster, factories.location(ws))
    return factories.restore(backup, cluster)


def inserts(ctx) -> int:
    return sum(1 for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("INSERT"))


def test_results_are_saved_in_bulk_not_one_row_at_a_time(restore):
    job = RestoreJob(restore)
    with CaptureQueriesContext(connection) as ctx:
        job.record(results(1200))
    assert RestoreItem.objects.filter(restore=restore).count() == 1200
    # One INSERT per batch (SQLite bounds a batch by its parameter limit: a few hundred
    # rows), never one per row.
    assert 1 <= inserts(ctx) <= 12
    with CaptureQueriesContext(connection) as ctx:
        job.record(results(10, "failed"))
    assert inserts(ctx) == 1
    assert restore.items.filter(outcome="failed").count() == 10


def test_long_fields_are_cut_to_the_columns(restore):
    job = RestoreJob(restore)
    job.record([ItemResult("r" * 300, "n" * 300, "x" * 300, "created", "m" * 5000)])
    item = restore.items.get()
    assert len(item.resource) == len(item.namespace) == len(item.name) == 253
    assert len(item.message) == 5000


def page_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("query", ["", "?page=2", "?outcome=failed", "?q=cm-0&namespace=ns-1"])
def test_the_results_table_pages_at_constant_queries(restore, client, query):
    viewer = factories.user()
    restore.workspace.grant(Role.VIEWER, user=viewer)
    client.force_login(viewer)
    url = reverse("restore_detail", args=[restore.pk]) + query
    job = RestoreJob(restore)
    job.record(results(220) + results(30, "failed"))
    small = page_queries(client, url)
    job.record(results(2500) + results(300, "failed"))
    large = page_queries(client, url)
    assert large == small
    page = client.get(url).content.decode()
    assert page.count('<span class="badge badge-') >= 10  # a page of rows was shown


def test_a_page_shows_a_hundred_rows_of_a_large_restore(restore, client):
    viewer = factories.user()
    restore.workspace.grant(Role.VIEWER, user=viewer)
    client.force_login(viewer)
    RestoreJob(restore).record(results(450))
    url = reverse("restore_detail", args=[restore.pk])
    last = client.get(url + "?page=5").content.decode()
    assert "cm-00449" in last and "cm-00399" not in last
    first = client.get(url).content.decode()
    assert "cm-00000" in first and "cm-00099" in first and "cm-00100" not in first
