"""Migration 0002_auditevent_cluster matches the events written before it to their cluster."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("workspaces", "0001_initial"),
    ("backups", "0005_auto_label"),
    ("locations", "0002_initial"),
]
AFTER = [("workspaces", "0002_auditevent_cluster")]


@pytest.mark.django_db(transaction=True)
def test_old_events_are_matched_to_the_cluster_they_are_about():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    ws = old.get_model("workspaces", "Workspace").objects.create(name="Old", slug="old")
    cluster = old.get_model("workspaces", "Cluster").objects.create(
        workspace=ws, name="old-cluster", kubeconfig="x"
    )
    location = old.get_model("locations", "BackupLocation").objects.create(
        name="old-store", workspace=ws, provider="filesystem", path="/tmp/x"
    )
    backup = old.get_model("backups", "Backup").objects.create(
        name="b1", workspace=ws, cluster=cluster, cluster_name=cluster.name, location=location
    )
    event = old.get_model("workspaces", "AuditEvent").objects.create
    about = {
        "cluster": event(action="registered", object_type="cluster", object_id=str(cluster.pk),
                         object_repr=cluster.name, workspace=ws),
        "backup": event(action="backed up", object_type="backup", object_id=str(backup.pk),
                        object_repr=backup.name, workspace=ws),
        "gone": event(action="deleted", object_type="backup", object_id="999999",
                      object_repr="gone", workspace=ws),
        "workspace": event(action="granted", object_type="workspace", object_id=str(ws.pk),
                           object_repr=ws.name, workspace=ws),
    }  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps.get_model("workspaces", "AuditEvent")
    clusters = {name: new.objects.get(pk=e.pk).cluster_id for name, e in about.items()}
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest, for other tests
    assert clusters == {
        "cluster": cluster.pk,
        "backup": cluster.pk,
        "gone": None,
        "workspace": None,
    }
