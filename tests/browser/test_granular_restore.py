"""A person ticks three objects in a backup's contents and restores just those into
another cluster: the wizard's preview, confirm, and exactly those three on the target."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from django.core.management import call_command
from kubernetes import client
from kubernetes.client.rest import ApiException

from devenv.testing import unique
from tests import factories
from tests.browser.test_live_pages import shot
from tests.factories import PASSWORD
from tests.integration.conftest import kube_b  # noqa: F401 (a fixture)
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
NAMES = ("cfg-a", "cfg-b", "cfg-c", "cfg-d", "cfg-e")
CHOSEN = ("cfg-a", "cfg-c", "cfg-e")


@pytest.fixture
def source_namespace(kube_a):
    name = unique("parts")
    core = client.CoreV1Api(kube_a)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for key in NAMES:
        core.create_namespaced_config_map(
            name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=key), data={"k": key})
        )
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name)


def register(ws, devenv, which: str) -> None:
    path = Path(devenv[f"CLUSTER_{which.upper()}_KUBECONFIG"])
    Cluster.objects.create(
        workspace=ws,
        name=f"cluster-{which}",
        kubeconfig=flatten_kubeconfig(path.read_text(), path.parent),
    )


def test_three_ticked_items_are_previewed_then_restored_into_b(
    page,
    log_in,
    devenv,
    worker,
    kube_b,  # noqa: F811
    source_namespace,
    tmp_path,
):
    operator = factories.user("picker")
    ws = factories.workspace("Demo")
    ws.grant(Role.OPERATOR, user=operator)
    register(ws, devenv, "a")
    register(ws, devenv, "b")
    factories.location(ws, "disk", path=str(tmp_path), is_default=True)
    call_command("backup", "cluster-a", "--location", "disk", "--name", "parts-backup",
                 "--include-namespaces", source_namespace, "--wait")  # fmt: skip
    target = unique("parts-copy")
    core_b = client.CoreV1Api(kube_b)
    try:
        log_in("picker", PASSWORD)
        page.goto("/backups/")
        page.click("text=parts-backup")
        page.click("summary code:has-text('v1/ConfigMap')")
        for name in CHOSEN:
            page.check(f"input[name=item][value='v1/ConfigMap|{source_namespace}|{name}']")
        shot(page, "granular-contents")
        page.click("button:has-text('Restore chosen items')")
        page.wait_for_selector("#chosen:has-text('Only the items you chose (3)')")
        assert all(name in page.inner_text("#chosen") for name in CHOSEN)
        assert "cfg-b" not in page.inner_text("#chosen")
        page.select_option("select[name=target_cluster]", label="cluster-b")
        page.fill("textarea[name=namespace_mapping]", f"{source_namespace}={target}")
        shot(page, "granular-wizard")
        page.click("button:has-text('Preview')")
        page.wait_for_selector("h1:has-text('Preview of a restore')")
        page.wait_for_selector("#progress .badge-completed", timeout=60_000)
        assert "cfg-c" in page.inner_text("#chosen-items")
        page.wait_for_selector(f"#items td:has-text('{target}')")
        previewed = page.inner_text("#items")
        assert all(name in previewed for name in CHOSEN) and "cfg-b" not in previewed
        with pytest.raises(ApiException):  # the preview changed nothing
            core_b.read_namespace(target)
        shot(page, "granular-preview")

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Confirm: restore into cluster-b')")
        page.wait_for_selector("h1:has-text('Restore parts-backup-')")
        page.wait_for_selector("#progress .badge-completed", timeout=60_000)
        page.wait_for_selector("#items td:has-text('cfg-e')")
        shot(page, "granular-restore")
        names = {cm.metadata.name for cm in core_b.list_namespaced_config_map(target).items}
        # B's own controller publishes its CA in every namespace; nothing else came
        assert names - {"kube-root-ca.crt"} == set(CHOSEN)
    finally:
        with contextlib.suppress(ApiException):
            core_b.delete_namespace(target)
