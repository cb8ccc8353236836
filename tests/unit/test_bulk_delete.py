"""Bulk delete of backups: a confirmation page that lists what goes and what is refused
(checked per row), and one typed confirmation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backups.models import Backup
from tests import factories


@pytest.fixture
def ticked(world, tmp_path):
    location = factories.location(world.workspace, path=str(tmp_path))
    ours = [factories.backup(world.cluster, location) for _ in range(2)]
    running = factories.backup(world.cluster, location, status="running")
    imported = factories.backup(world.cluster, location, source="imported")
    elsewhere = factories.backup(factories.cluster(factories.workspace()), location)
    return ours, running, imported, elsewhere


def post(client, ids, **extra):
    return client.post(reverse("backup_bulk_delete"), {"ids": ids, **extra})


def test_it_asks_then_deletes_only_what_may_go(world, login, ticked):
    ours, running, imported, elsewhere = ticked
    client = login(world.users["admin"])
    ids = [b.pk for b in [*ours, running, imported, elsewhere]]
    page = post(client, ids).content.decode()
    assert "Delete 2 backups?" in page and "delete 2 backups" in page
    assert running.name in page and "still running" in page
    assert imported.name in page and "read-only" in page
    assert elsewhere.name not in page  # not visible: not even named
    assert Backup.objects.filter(pk__in=ids).count() == 5  # nothing yet

    wrong = post(client, ids, go="1", confirm="yes")
    assert wrong.status_code == 200 and Backup.objects.filter(pk__in=ids).count() == 5

    done = post(client, ids, go="1", confirm="delete 2 backups")
    assert done.status_code == 302
    assert not Backup.objects.filter(pk__in=[b.pk for b in ours]).exists()
    assert Backup.objects.filter(pk__in=[running.pk, imported.pk, elsewhere.pk]).count() == 3


@pytest.mark.parametrize("persona", ["operator", "viewer", "cluster_grantee"])
def test_it_refuses_each_row_a_person_may_not_delete(world, login, ticked, persona):
    ours, *_ = ticked
    client = login(world.users[persona])
    ids = [b.pk for b in ours]
    page = post(client, ids).content.decode()
    assert "does not allow deleting" in page
    post(client, ids, go="1", confirm="delete 0 backups")
    assert Backup.objects.filter(pk__in=ids).count() == 2


def test_the_list_offers_checkboxes_only_for_deletable_rows(world, login, ticked):
    ours, running, *_ = ticked
    admin = login(world.users["admin"]).get(reverse("backup_list")).content.decode()
    assert f'name="ids" value="{ours[0].pk}"' in admin
    assert f'name="ids" value="{running.pk}"' not in admin
    viewer = login(world.users["viewer"]).get(reverse("backup_list")).content.decode()
    assert 'name="ids"' not in viewer and "Delete the selected" not in viewer


def test_junk_ids_are_ignored(world, login):
    page = post(login(world.users["admin"]), ["x", "-1", "99999999"])
    assert page.status_code == 200 and "Delete 0 backups?" in page.content.decode()
