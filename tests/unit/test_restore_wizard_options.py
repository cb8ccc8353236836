"""The wizard makes the user choose where to restore, and warns (in the preview) about
a namespace mapping that maps nothing or lands two namespaces in one."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backups.models import Restore
from backups.naming import mapping_warnings
from backups.views import restores as restore_views


@pytest.fixture
def wizard(world, login, monkeypatch):
    monkeypatch.setattr(restore_views.reader, "namespaces", lambda *a: ["shop", "web"])
    client = login(world.users["operator"])
    return client, reverse("restore_wizard", args=[world.backup.pk])


def post(client, url, **fields):
    data = {"cluster_resources": "auto", "existing_policy": "none", "action": "preview"}
    return client.post(url, data | fields)


def test_it_chooses_no_target_for_the_user(world, wizard):
    client, url = wizard
    page = client.get(url).content.decode()
    assert "Choose a cluster" in page
    assert f'value="{world.cluster.pk}" selected' not in page
    response = post(client, url)
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not Restore.objects.exclude(pk=world.restore.pk).exists()


def test_it_shows_mapping_warnings_in_the_preview(world, wizard):
    client, url = wizard
    response = post(
        client, url, target_cluster=world.cluster.pk, namespace_mapping="ghost=g2, shop=web"
    )
    assert response.status_code == 302
    preview = Restore.objects.get(is_preview=True)
    page = client.get(response.url).content.decode()
    assert "ghost is not in the backup" in page
    assert "shop and web would be restored into the same namespace, web" in page
    assert preview.option_warnings and all(w in page for w in preview.option_warnings)


def test_a_clean_mapping_warns_of_nothing(world, wizard):
    client, url = wizard
    response = post(client, url, target_cluster=world.cluster.pk, namespace_mapping="shop=shop2")
    assert "Check these options" not in client.get(response.url).content.decode()


@pytest.mark.parametrize(
    ("mapping", "held", "included", "expect"),
    [
        ({"a": "b"}, ["a"], [], []),
        ({"x": "y"}, ["a"], [], ["x is not in the backup, so its mapping to y maps nothing."]),
        ({"a": "c", "b": "c"}, ["a", "b"], [], ["a and b would be restored into the same namespace, c."]),
        ({"a": "b"}, ["a", "b"], [], ["a and b would be restored into the same namespace, b."]),
        ({"a": "b"}, ["a", "b"], ["a"], []),  # b is not restored, so nothing collides
        ({"b": "z"}, ["a", "b"], ["a"], ["b is not among the chosen namespaces, so its mapping does nothing."]),
        ({"a": "b"}, [], [], []),  # the backup's contents could not be read: no guess
    ],
)  # fmt: skip
def test_mapping_warnings(mapping, held, included, expect):
    assert mapping_warnings(mapping, held, included) == expect
