"""A person backs up a cluster, watches the progress bar finish, and opens an item's YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories
from tests.factories import PASSWORD
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_backup_runs_with_live_progress_and_can_be_browsed(
    page, log_in, devenv, worker, tmp_path
):
    operator = factories.user("ops")
    ws = factories.workspace("Demo")
    ws.grant(Role.OPERATOR, user=operator)
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )
    factories.location(ws, "disk", path=str(tmp_path), is_default=True)

    log_in("ops", PASSWORD)
    page.goto("/clusters/cluster-a/")
    page.click(".tabs >> text=Backups")
    page.click("text=Back up now")
    page.select_option("select[name=include_namespaces]", ["shop", "billing"])
    page.click("button:has-text('Start backup')")
    page.wait_for_selector("h1:has-text('Backup manual-cluster-a-')")
    assert page.locator("#progress .progress").count() == 1
    # The fragment polls every second until the backup ends, then stops.
    page.wait_for_selector("#progress .badge-completed", timeout=60_000)
    assert "100" in page.get_attribute("#progress [role=progressbar]", "aria-valuenow")

    page.wait_for_selector("#contents summary:has-text('apps/v1/Deployment')")
    page.click("#contents summary:has-text('apps/v1/Deployment')")
    page.locator("#contents details[open] .item a").first.click()
    page.wait_for_selector("#item pre.yaml")
    assert "kind: Deployment" in page.inner_text("#item pre.yaml")
