"""Workspace backups and restores across two real clusters, and restoring what sync imported."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from django.core.management import call_command
from kubernetes import client
from kubernetes.client.rest import ApiException

from backups.models import Backup, Restore, Status
from backups.scheduling import backup_workspace, restore_run
from devenv.testing import unique
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def eager():
    from palette_site.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def register(ws, devenv, key: str, name: str) -> Cluster:
    path = Path(devenv[f"CLUSTER_{key}_KUBECONFIG"])
    return Cluster.objects.create(
        workspace=ws, name=name, kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )


@contextlib.contextmanager
def namespace_with_config(apis, name: str):
    """The same namespace, holding one config map, on every cluster given."""
    for api in apis:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        core.create_namespaced_config_map(
            name,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"mode": "on"}),
        )
    try:
        yield
    finally:
        for api in apis:
            with contextlib.suppress(ApiException):
                client.CoreV1Api(api).delete_namespace(name)


def config_exists(api, namespace: str) -> bool:
    try:
        client.CoreV1Api(api).read_namespaced_config_map("settings", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_a_workspace_run_is_restored_into_every_cluster(
    db, devenv, kube_a, kube_b, tmp_path, eager, django_capture_on_commit_callbacks
):
    ws = factories.workspace("Fleet")
    register(ws, devenv, "A", "cluster-a")
    register(ws, devenv, "B", "cluster-b")
    factories.cluster(ws, "ghost")  # unreachable
    location = factories.location(ws, "disk", path=str(tmp_path))
    namespace = unique("fleet")
    with namespace_with_config([kube_a, kube_b], namespace):
        with django_capture_on_commit_callbacks(execute=True):
            run = backup_workspace(
                ws, location, prefix="fleet", options={"include_namespaces": [namespace]}
            )
        assert sorted(b.cluster_name for b in run.backups.all()) == ["cluster-a", "cluster-b"]
        assert all(b.status == Status.COMPLETED for b in Backup.objects.filter(run=run))
        assert [s["cluster"] for s in run.skipped] == ["ghost"]
        for api in (kube_a, kube_b):
            client.CoreV1Api(api).delete_namespaced_config_map("settings", namespace)

        with django_capture_on_commit_callbacks(execute=True):
            restores, skipped = restore_run(run, include_namespaces=[namespace])
        assert sorted(r.target_cluster_name for r in restores) == ["cluster-a", "cluster-b"]
        assert skipped == [{"cluster": "ghost", "reason": "the run has no backup of it"}]
        for restore in Restore.objects.filter(run=run):
            assert restore.status == Status.COMPLETED, restore.error
            assert restore.created_count >= 1
        assert config_exists(kube_a, namespace) and config_exists(kube_b, namespace)


def test_an_empty_console_restores_a_backup_it_imported(
    db, devenv, kube_a, minio_bucket, eager, django_capture_on_commit_callbacks, capsys
):
    ws = factories.workspace("Demo")
    cluster = register(ws, devenv, "A", "cluster-a")
    factories.location(
        ws, "minio", provider="minio", bucket=minio_bucket, prefix="velero",
        endpoint_url=devenv["MINIO_ENDPOINT"], force_path_style=True,
        credentials={"access_key": devenv["MINIO_ACCESS_KEY"], "secret_key": devenv["MINIO_SECRET_KEY"]},
    )  # fmt: skip
    source = unique("src")
    with namespace_with_config([kube_a], source):
        call_command("backup", "cluster-a", "--location", "minio", "--include-namespaces",
                     source, "--name", "made-elsewhere", "--wait")  # fmt: skip
    Backup.objects.all().delete()  # an empty console, pointed at the same bucket

    call_command("sync_location", "minio")
    imported = Backup.objects.get(name="made-elsewhere")
    assert imported.source == Backup.Source.IMPORTED and imported.cluster == cluster

    target = unique("copy")
    try:
        call_command("restore", "made-elsewhere", "--to", "cluster-a",
                     "--namespace-mapping", f"{source}={target}", "--wait")  # fmt: skip
        assert config_exists(kube_a, target)
    finally:
        with contextlib.suppress(ApiException):
            client.CoreV1Api(kube_a).delete_namespace(target)
    assert "Completed" in capsys.readouterr().out
