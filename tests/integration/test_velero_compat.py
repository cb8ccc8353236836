"""The real Velero (v1.18, devenv/velero.py) and the console read each other's backups.

Both directions, on a copy of the seeded mix in a namespace of the test's own on cluster A,
plus a CRD of its own with custom resources, restored into cluster B under a namespace
mapping and compared object by object with the source:

- a console backup of A in a MinIO location is synced by a Velero server on B; ``velero
  backup describe --details`` and ``velero backup logs`` work on it, and ``velero restore
  create --namespace-mappings`` brings it into B with phase Completed;
- a Velero backup of A (``velero backup create``, by a Velero server on A) is imported by
  ``manage.py sync_location`` and restored by the console into B.

Every name is unique to the run; the tests delete what they made in A and B (and each
Velero server its own namespace).
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import call_command

from backups.engine.kube.api import Kube
from backups.models import Backup, Status
from devenv import velero
from devenv.testing import wait_for
from tests import factories
from tests.integration import velero_support as support
from tests.integration.velero_support import kubeconfig, minio_location, start_velero
from workspaces.models import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def world(db, devenv, minio_bucket):
    """Console rows (a workspace with clusters A and B), a source namespace on A, a target
    namespace name on B; everything made is deleted afterwards."""
    if not velero.binaries_available():
        pytest.fail("Velero is not built: `python -m devenv up` builds it (devenv/velero.py)")
    run = uuid.uuid4().hex[:8]
    ws = factories.workspace("Velero")
    clusters = {
        w: Cluster.objects.create(workspace=ws, name=f"cluster-{w.lower()}",
                                  kubeconfig=kubeconfig(devenv, w))
        for w in "AB"
    }  # fmt: skip
    kubes = {w: Kube(c.kubeconfig, 8) for w, c in clusters.items()}
    source = support.create_source(devenv, f"vc-{run}", f"t{run}.compat.palette.io")
    target = f"vc-{run}-b"
    servers: list[velero.Server] = []
    try:
        support.wait_bound(kubes["A"], source.namespace)
        yield {
            "run": run, "ws": ws, "source": source, "target": target, "kubes": kubes,
            "bucket": minio_bucket, "servers": servers,
        }  # fmt: skip
    finally:
        for server in servers:
            server.stop()
        support.delete_source(devenv, source, "b", target)
        support.delete_source(devenv, source, "a", source.namespace)
        for kube in kubes.values():
            kube.close()


def assert_same(world, mapping, backup_name, restore_name):
    found = support.compare(
        world["source"], world["kubes"]["A"], world["kubes"]["B"], mapping,
        backup_name, restore_name,
    )  # fmt: skip
    assert found == {}, json.dumps(found, indent=1)


def test_velero_restores_a_console_backup_into_another_cluster(devenv, world, capsys):
    source, target = world["source"], world["target"]
    location = minio_location(devenv, world, f"compat-{world['run']}", "console")
    name = f"console-{world['run']}"
    call_command("backup", "cluster-a", "--location", location.name, "--name", name,
                 "--include-namespaces", source.namespace, "--wait")  # fmt: skip
    assert capsys.readouterr().out.split()[-1] == "Completed"

    server = start_velero(devenv, world, "b", "console")
    synced = wait_for(lambda: server.get("backup", name), 120, f"Velero on B to sync backup {name}")
    assert synced["status"]["phase"] == "Completed"
    assert synced["spec"]["includedNamespaces"] == [source.namespace]

    described = server.cli("backup", "describe", name, "--details", "--colorized=false")
    assert "Phase:  Completed" in described, described
    # --details lists the backup's resources (read from its resource list in the bucket).
    assert f"{source.namespace}/frontend-config" in described
    assert f"{source.namespace}/small-gear" in described
    assert source.crd_name in described
    logs = server.cli("backup", "logs", name)
    assert "Backup Completed: " in logs  # the console's own log, as Velero fetched it

    restore = f"velero-{world['run']}"
    server.cli("restore", "create", restore, "--from-backup", name,
               "--namespace-mappings", f"{source.namespace}:{target}")  # fmt: skip
    done = server.wait_phase("restore", restore, timeout=300)
    status = done["status"]
    assert status["phase"] == "Completed", support.velero_report(server, "restore", restore)
    assert not status.get("errors"), support.velero_report(server, "restore", restore)
    assert_same(world, {source.namespace: target}, name, restore)


def test_the_console_imports_and_restores_a_velero_backup(devenv, world, capsys):
    source, target = world["source"], world["target"]
    server = start_velero(devenv, world, "a", "velero")
    name = f"velero-{world['run']}"
    server.cli("backup", "create", name, "--include-namespaces", source.namespace)
    done = server.wait_phase("backup", name, timeout=300)
    assert done["status"]["phase"] == "Completed", server.cli("backup", "logs", name)

    location = minio_location(devenv, world, f"theirs-{world['run']}", "velero")
    call_command("sync_location", location.name)
    assert capsys.readouterr().out.splitlines()[0] == "1 backup imported"
    imported = Backup.objects.get(name=name, location=location)
    assert imported.status == Status.COMPLETED
    assert imported.include_namespaces == [source.namespace]

    call_command("restore", name, "--to", "cluster-b", "--location", location.name,
                 "--namespace-mapping", f"{source.namespace}={target}", "--restore-pvs",
                 "--wait")  # fmt: skip
    restore_name, phase = capsys.readouterr().out.splitlines()[:2]
    assert phase == "Completed"
    assert_same(world, {source.namespace: target}, name, restore_name)
