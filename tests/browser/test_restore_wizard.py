"""A person restores a backup under another namespace: preview, confirm, results."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from django.core.management import call_command
from kubernetes import client
from kubernetes.client.rest import ApiException

from devenv.testing import unique
from tests import factories
from tests.factories import PASSWORD
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def source_namespace(kube_a):
    name = unique("orders")
    core = client.CoreV1Api(kube_a)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for key in ("a", "b", "c"):
        core.create_namespaced_config_map(
            name,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cfg-{key}"), data={"k": key}),
        )
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)


def test_the_wizard_previews_then_restores_under_a_mapped_namespace(
    page, log_in, devenv, worker, kube_a, source_namespace, tmp_path
):
    operator = factories.user("ops")
    ws = factories.workspace("Demo")
    ws.grant(Role.OPERATOR, user=operator)
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )
    factories.location(ws, "disk", path=str(tmp_path), is_default=True)
    call_command("backup", "cluster-a", "--location", "disk", "--name", "orders-backup",
                 "--include-namespaces", source_namespace, "--wait")  # fmt: skip
    target = unique("orders-copy")
    core = client.CoreV1Api(kube_a)
    try:
        log_in("ops", PASSWORD)
        page.goto("/backups/")
        page.click("text=orders-backup")
        page.click("text=Restore…")
        page.select_option("select[name=target_cluster]", label="cluster-a")
        page.select_option("select[name=include_namespaces]", [source_namespace])
        page.fill("textarea[name=namespace_mapping]", f"{source_namespace}={target}")
        page.click("button:has-text('Preview')")
        page.wait_for_selector("h1:has-text('Preview of a restore')")
        page.wait_for_selector("#progress .badge-completed", timeout=60_000)
        assert "would be created" in page.inner_text("#progress")
        page.wait_for_selector(f"#items td:has-text('{target}')")
        with pytest.raises(ApiException):  # the preview changed nothing
            core.read_namespace(target)

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Confirm: restore into cluster-a')")
        page.wait_for_selector("h1:has-text('Restore orders-backup-')")
        page.wait_for_selector("#progress .badge-completed", timeout=60_000)
        page.wait_for_selector(f"#items td:has-text('{target}')")
        # The result table filters by outcome.
        page.select_option("#f-outcome", "created")
        page.wait_for_selector("#items td:has-text('cfg-a')")
        assert "Created" in page.inner_text("#items")
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(target).items}
        assert {"cfg-a", "cfg-b", "cfg-c"} <= names
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(target)
