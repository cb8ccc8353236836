"""Granular restore from the content browser: chosen items, a namespace or a kind go
through the wizard's preview; the choice is checked on the server, per persona."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from backups import browse
from backups.engine.velero.catalogue import Catalogue
from backups.jobs import confirm_preview
from backups.models import Restore
from backups.views import backup as backup_views
from backups.views import restores as restore_views
from tests import factories
from tests.conftest import PERSONAS
from workspaces.roles import Role

LISTING = {
    "v1/ConfigMap": ["shop/cfg", "shop/other", "web/cfg"],
    "apps/v1/Deployment": ["shop/web"],
    "rbac.authorization.k8s.io/v1/ClusterRole": ["reader"],
    "v1/Namespace": ["shop", "web"],
}
CHOSEN = ["v1/ConfigMap|shop|cfg", "apps/v1/Deployment|shop|web", "rbac.authorization.k8s.io/v1/ClusterRole||reader"]  # fmt: skip


@pytest.fixture
def listing(monkeypatch):
    monkeypatch.setattr(restore_views.reader, "namespaces", lambda *a: ["shop", "web"])
    monkeypatch.setattr(restore_views.reader, "resource_list", lambda *a: LISTING)


def wizard_url(world):
    return reverse("restore_wizard", args=[world.backup.pk])


def post(client, url, items, **fields):
    data = {"cluster_resources": "auto", "existing_policy": "none", "action": "preview"}
    return client.post(url, data | {"item": items} | fields)


def new_restores(world):
    return Restore.objects.exclude(pk=world.restore.pk)


# What each persona gets when it brings chosen items to the wizard.
EXPECTED = {
    "admin": 200, "operator": 200, "team_admin": 200, "cluster_grantee": 200,
    "viewer": 403, "outsider": 404, "anonymous": 302,
}  # fmt: skip


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_lists_the_chosen_items_for_who_may_restore(world, login, listing, persona):
    client = login(world.users[persona])
    response = client.post(wizard_url(world), {"action": "choose", "item": CHOSEN})
    assert response.status_code == EXPECTED[persona]
    if response.status_code == 200:
        page = response.content.decode()
        assert "Only the items you chose (3)" in page
        for value in CHOSEN:
            assert f'name="item" value="{value}"' in page
    assert not new_restores(world).exists()


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_preview_of_chosen_items_starts_only_for_who_may_restore(world, login, listing, persona):
    client = login(world.users[persona])
    response = post(client, wizard_url(world), CHOSEN, target_cluster=world.cluster.pk)
    if EXPECTED[persona] == 200:
        restore = new_restores(world).get()
        assert response.status_code == 302 and restore.is_preview
        assert restore.chosen_items == [value.split("|") for value in CHOSEN]
    else:
        assert response.status_code == EXPECTED[persona]
        assert not new_restores(world).exists()


@pytest.mark.parametrize(
    ("items", "says"),
    [
        (["v1/ConfigMap|shop|ghost"], "v1/ConfigMap shop/ghost is not in this backup."),
        (["v1/Secret|shop|cfg"], "v1/Secret shop/cfg is not in this backup."),
        (["v1/ConfigMap|web|other"], "is not in this backup."),
        (["v1/ConfigMap|shop"], "not one the content browser offers"),
        (["v1/ConfigMap|shop|cfg|x"], "not one the content browser offers"),
        (["||"], "not one the content browser offers"),
        (["\x00|\x00|\x00"], "is not in this backup."),
    ],
)
def test_it_refuses_items_the_backup_does_not_hold(world, login, listing, items, says):
    client = login(world.users["operator"])
    for action in ("choose", "preview", "restore"):
        response = post(client, wizard_url(world), items, target_cluster=world.cluster.pk,
                        action=action)  # fmt: skip
        assert response.status_code == 400
        page = response.content.decode()
        assert says in page
        assert 'value="restore"' not in page  # no button that would restore everything
    assert not new_restores(world).exists()


def test_choosing_nothing_says_so(world, login, listing):
    client = login(world.users["operator"])
    response = client.post(wizard_url(world), {"action": "choose"})
    assert response.status_code == 400 and "No item was ticked." in response.content.decode()


def test_it_refuses_too_many_items(world, login, monkeypatch, listing):
    many = {"v1/ConfigMap": [f"shop/c{i}" for i in range(browse.MAX_CHOSEN + 1)]}
    monkeypatch.setattr(restore_views.reader, "resource_list", lambda *a: many)
    client = login(world.users["operator"])
    items = [f"v1/ConfigMap|shop|c{i}" for i in range(browse.MAX_CHOSEN + 1)]
    response = post(client, wizard_url(world), items, target_cluster=world.cluster.pk)
    assert response.status_code == 400 and "at most 500 items" in response.content.decode()
    assert not new_restores(world).exists()


def test_a_backup_without_resource_list_offers_no_single_items(world, login, monkeypatch, listing):
    from backups.engine.storage.base import NotFound

    def missing(*args):
        raise NotFound("no list")

    monkeypatch.setattr(restore_views.reader, "resource_list", missing)
    client = login(world.users["operator"])
    response = post(client, wizard_url(world), CHOSEN[:1], target_cluster=world.cluster.pk)
    assert response.status_code == 400 and "no resource list" in response.content.decode()


def test_it_restores_into_no_cluster_the_user_may_not_restore_into(world, login, listing):
    other = factories.workspace("Other")
    watched = factories.cluster(other, "watched")
    other.grant(Role.VIEWER, user=world.users["operator"])
    hidden = factories.cluster(factories.workspace("Hidden"), "hidden")
    client = login(world.users["operator"])
    for target in (watched, hidden):
        response = post(client, wizard_url(world), CHOSEN, target_cluster=target.pk)
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not new_restores(world).exists()


def test_items_of_a_backup_the_user_cannot_see_answer_404(world, login, listing):
    hidden_ws = factories.workspace("Hidden")
    hidden = factories.backup(
        factories.cluster(hidden_ws, "hidden"), factories.location(hidden_ws, "hidden-store")
    )
    client = login(world.users["operator"])
    url = reverse("restore_wizard", args=[hidden.pk])
    response = post(client, url, CHOSEN, target_cluster=world.cluster.pk)
    assert response.status_code == 404 and not new_restores(world).exists()


def test_confirming_the_preview_restores_the_same_items(world, listing):
    chosen = [["v1/ConfigMap", "shop", "cfg"]]
    Restore.objects.filter(pk=world.restore.pk).update(
        is_preview=True, status="completed", finished_at=timezone.now(), chosen_items=chosen
    )
    world.restore.refresh_from_db()
    restore, started = confirm_preview(world.restore, by=world.users["operator"])
    assert started and not restore.is_preview and restore.chosen_items == chosen


def test_namespace_and_kind_links_fill_the_wizard(world, login, listing):
    client = login(world.users["operator"])
    page = client.get(wizard_url(world) + "?namespace=web").content.decode()
    assert '<option value="web" selected>' in page
    page = client.get(wizard_url(world) + "?namespace=ghost").content.decode()
    assert "selected>ghost" not in page and 'value="ghost"' not in page
    page = client.get(wizard_url(world) + "?kind=apps/v1/Deployment").content.decode()
    assert 'value="Deployment.apps"' in page
    page = client.get(wizard_url(world) + "?kind=v1/ConfigMap").content.decode()
    assert 'value="ConfigMap"' in page


@pytest.mark.parametrize("persona", ["admin", "operator", "cluster_grantee", "viewer"])
def test_the_content_browser_offers_choices_only_to_who_may_restore(
    world, login, monkeypatch, persona
):
    monkeypatch.setattr(backup_views.reader, "results", lambda *a: {"errors": [], "warnings": []})
    monkeypatch.setattr(
        backup_views.browse,
        "catalogue",
        lambda *a: Catalogue.of_listing({"v1/ConfigMap": ["shop/cfg"]}),
    )
    client = login(world.users[persona])
    response = client.get(reverse("backup_contents", args=[world.backup.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    offered = persona != "viewer"
    assert ('name="item" value="v1/ConfigMap|shop|cfg"' in page) is offered
    assert ("?namespace=shop" in page) is offered and ("?kind=v1/ConfigMap" in page) is offered
    assert "cfg</a>" in page  # the YAML link is there for everyone who sees the backup


def test_chosen_items_keep_order_and_drop_repeats():
    values = ["v1/ConfigMap|shop|cfg", "v1/Namespace||web", "v1/ConfigMap|shop|cfg"]
    assert browse.chosen_items(values, LISTING) == [
        ["v1/ConfigMap", "shop", "cfg"],
        ["v1/Namespace", "", "web"],
    ]
    assert browse.kind_filter("rbac.authorization.k8s.io/v1/ClusterRole") == (
        "ClusterRole.rbac.authorization.k8s.io"
    )


def test_the_restore_command_takes_items_checked_like_the_wizards(world, listing, tmp_path):
    from django.core.management import CommandError, call_command

    listed = tmp_path / "items.txt"
    listed.write_text("apps/v1/Deployment|shop|web\n\nv1/Namespace||web\n")
    call_command("restore", world.backup.name, "--to", world.cluster.name, "--preview",
                 "--item", "v1/ConfigMap|shop|cfg", "--items-file", str(listed))  # fmt: skip
    restore = new_restores(world).get()
    assert restore.chosen_items == [
        ["v1/ConfigMap", "shop", "cfg"], ["apps/v1/Deployment", "shop", "web"],
        ["v1/Namespace", "", "web"],
    ]  # fmt: skip
    with pytest.raises(CommandError, match="v1/Secret shop/x is not in this backup"):
        call_command("restore", world.backup.name, "--to", world.cluster.name,
                     "--item", "v1/Secret|shop|x")  # fmt: skip
    with pytest.raises(CommandError, match="--items-file"):
        call_command("restore", world.backup.name, "--to", world.cluster.name,
                     "--items-file", str(tmp_path / "missing"))  # fmt: skip
    assert new_restores(world).count() == 1
