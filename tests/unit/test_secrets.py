"""Secrets are encrypted at rest and never shown: not in a raw database column,
not on a page, not in an admin form, not in a log record."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.urls import reverse

from tests import factories

TOKEN = "SENTINEL-kube-token-4f1d2c"
ETCD_KEY = "-----BEGIN EC PRIVATE KEY-----SENTINEL-etcd-key-99a7-----END EC PRIVATE KEY-----"
CLOUD_SECRET = "SENTINEL-cloud-secret-7b3e"
SENTINELS = ("SENTINEL",)


@pytest.fixture
def secret_world(world):
    cluster = factories.cluster(
        world.workspace,
        "secretive",
        token=TOKEN,
        etcd_key=ETCD_KEY,
        etcd_endpoint="https://127.0.0.1:2379",
    )
    location = factories.location(
        world.workspace,
        "secret-store",
        provider="s3",
        bucket="b",
        credentials={"access_key": "AKIAEXAMPLE", "secret_key": CLOUD_SECRET},
    )
    return world, cluster, location


def all_raw_text() -> str:
    """Every text value of every row of every table, as the database stores it."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (table names from introspection)
            for row in cursor.fetchall():
                chunks.extend(str(value) for value in row if value is not None)
    return "\n".join(chunks)


def test_it_stores_no_secret_in_clear(secret_world):
    _, cluster, location = secret_world
    raw = all_raw_text()
    for sentinel in SENTINELS:
        assert sentinel not in raw
    # ...and the application still reads them back.
    cluster.refresh_from_db()
    location.refresh_from_db()
    assert TOKEN in cluster.kubeconfig
    assert cluster.etcd_key == ETCD_KEY
    assert location.credentials["secret_key"] == CLOUD_SECRET


def test_it_shows_no_secret_on_pages_admin_or_logs(secret_world, client, caplog):
    world, cluster, location = secret_world
    staff = factories.user("support", is_staff=True, is_superuser=True)
    client.force_login(staff)
    urls = [
        reverse("cluster_detail", args=[cluster.name]),
        reverse("location_detail", args=[location.pk]),
        reverse("location_list"),
        reverse("dashboard"),
        reverse("workspace_detail", args=[world.workspace.slug]),
        reverse("admin:workspaces_cluster_change", args=[cluster.pk]),
        reverse("admin:workspaces_cluster_changelist"),
        reverse("admin:locations_backuplocation_change", args=[location.pk]),
        reverse("admin:locations_backuplocation_changelist"),
    ]
    with caplog.at_level(logging.DEBUG):
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            for sentinel in SENTINELS:
                assert sentinel not in response.content.decode(), url
        # A health check (which fails: the server is unreachable) logs nothing secret.
        client.post(reverse("cluster_health", args=[cluster.name]))
    for sentinel in SENTINELS:
        assert sentinel not in caplog.text
    admin_page = client.get(reverse("admin:workspaces_cluster_change", args=[cluster.pk]))
    assert "new_kubeconfig" in admin_page.content.decode()


def test_it_keeps_a_secret_when_the_admin_leaves_it_blank(secret_world, client):
    _, cluster, _ = secret_world
    client.force_login(factories.user("support", is_staff=True, is_superuser=True))
    url = reverse("admin:workspaces_cluster_change", args=[cluster.pk])
    form = {
        "workspace": cluster.workspace.pk,
        "name": cluster.name,
        "description": "changed",
        "etcd_endpoint": cluster.etcd_endpoint,
        "new_kubeconfig": "",
        "new_etcd_key": "",
    }
    assert client.post(url, form).status_code == 302
    cluster.refresh_from_db()
    assert cluster.description == "changed"
    assert TOKEN in cluster.kubeconfig and cluster.etcd_key == ETCD_KEY


def test_it_never_dumps_secrets(secret_world):
    from django.core import serializers

    _, cluster, location = secret_world
    dumped = serializers.serialize("json", [cluster, location])
    assert "SENTINEL" not in dumped
