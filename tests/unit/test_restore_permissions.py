"""Restoring INTO a cluster needs the restore permission on that cluster."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from guardian.shortcuts import assign_perm

from backups.models import Restore
from tests import factories
from workspaces.roles import Role


@pytest.fixture
def elsewhere(world):
    """A second workspace where the operator is only a Viewer."""
    ws = factories.workspace("Elsewhere")
    target = factories.cluster(ws, "elsewhere-prod")
    ws.grant(Role.VIEWER, user=world.users["operator"])
    return target


def test_the_wizard_offers_and_accepts_only_clusters_one_may_restore_into(world, elsewhere, client):
    client.force_login(world.users["operator"])
    url = reverse("restore_wizard", args=[world.backup.pk])
    page = client.get(url).content.decode()
    assert world.cluster.name in page and elsewhere.name not in page
    response = client.post(url, {"target_cluster": elsewhere.pk, "cluster_resources": "auto",
                                 "existing_policy": "none", "action": "preview"})  # fmt: skip
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Restore.objects.filter(target_cluster=elsewhere).exists()


def test_a_cluster_grant_allows_restoring_into_that_cluster(world, elsewhere, client):
    assign_perm("restore_cluster", world.users["operator"], elsewhere)
    client.force_login(world.users["operator"])
    response = client.post(
        reverse("restore_wizard", args=[world.backup.pk]),
        {"target_cluster": elsewhere.pk, "cluster_resources": "auto", "existing_policy": "none",
         "namespace_mapping": "shop=shop-copy", "action": "preview"},
    )  # fmt: skip
    assert response.status_code == 302
    preview = Restore.objects.get(target_cluster=elsewhere)
    assert preview.is_preview and preview.namespace_mapping == {"shop": "shop-copy"}


def test_confirming_a_preview_checks_the_target_again(world, elsewhere, client):
    assign_perm("restore_cluster", world.users["operator"], elsewhere)
    preview = factories.restore(world.backup, elsewhere, is_preview=True, status="completed")
    from guardian.shortcuts import remove_perm

    remove_perm("restore_cluster", world.users["operator"], elsewhere)
    client.force_login(world.users["operator"])
    response = client.post(reverse("restore_confirm", args=[preview.pk]))
    assert response.status_code in (403, 404)
    assert Restore.objects.filter(target_cluster=elsewhere).count() == 1


def test_the_command_refuses_a_user_without_restore_on_the_target(world, elsewhere):
    with pytest.raises(CommandError, match="may not restore into elsewhere-prod"):
        call_command("restore", world.backup.name, "--to", elsewhere.name, "--as-user", "operator")
    assert not Restore.objects.filter(target_cluster=elsewhere).exists()
    call_command("restore", world.backup.name, "--to", world.cluster.name, "--as-user", "operator")
    assert Restore.objects.filter(target_cluster=world.cluster).count() == 2  # the world's + this


def test_the_command_explains_bad_input(world):
    with pytest.raises(CommandError, match="no backup"):
        call_command("restore", "nope", "--to", world.cluster.name)
    with pytest.raises(CommandError, match="no cluster"):
        call_command("restore", world.backup.name, "--to", "nowhere")
    with pytest.raises(CommandError, match="source=target"):
        call_command(
            "restore", world.backup.name, "--to", world.cluster.name, "--namespace-mapping", "x"
        )
