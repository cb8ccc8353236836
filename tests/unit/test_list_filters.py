"""Lists answer what the URL asks: search, filters, dates and sort, kept by the page
links; bad values are ignored with a note, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backups.models import Backup
from tests import factories


@pytest.fixture
def backups(world):
    other = factories.cluster(world.workspace, "payments-dr")
    made = {
        "old": factories.backup(world.cluster, world.location, name="nightly-old", size_bytes=10),
        "big": factories.backup(world.cluster, world.location, name="nightly-big", size_bytes=900),
        "failed": factories.backup(other, world.location, name="manual-dr", status="failed"),
    }
    Backup.objects.filter(pk=made["old"].pk).update(created_at=timezone.now() - timedelta(days=40))
    return made


def names(response) -> list[str]:
    page = response.context["page"]
    return [b.name for b in page.object_list]


def test_it_searches_filters_and_sorts(world, login, backups):
    client = login(world.users["admin"])
    url = reverse("backup_list")
    assert set(names(client.get(url, {"q": "nightly"}))) == {"nightly-old", "nightly-big"}
    assert names(client.get(url, {"status": "failed"})) == ["manual-dr"]
    assert names(client.get(url, {"cluster": "PAYMENTS-DR"})) == ["manual-dr"]
    assert names(client.get(url, {"q": "nightly", "sort": "size"})) == [
        "nightly-big",
        "nightly-old",
    ]
    since = (timezone.now() - timedelta(days=10)).date().isoformat()
    assert "nightly-old" not in names(client.get(url, {"from": since}))
    until = (timezone.now() - timedelta(days=30)).date().isoformat()
    assert names(client.get(url, {"to": until})) == ["nightly-old"]
    assert "No backups match these filters" in client.get(url, {"q": "zzz"}).content.decode()


def test_a_filter_never_widens_what_a_person_may_see(world, login, backups):
    outsider = login(world.users["outsider"])
    assert names(outsider.get(reverse("backup_list"), {"q": "nightly"})) == []


@pytest.mark.parametrize(
    "query",
    [{"status": "bogus"}, {"sort": "'; drop"}, {"from": "yesterday"}, {"to": "2026-13-45"},
     {"q": "x" * 5000}, {"page": "-1"}],
)  # fmt: skip
def test_bad_values_are_ignored_with_a_note(world, login, backups, query):
    response = login(world.users["admin"]).get(reverse("backup_list"), query)
    assert response.status_code == 200


def test_page_links_keep_the_state(world, login, backups):
    for i in range(55):
        factories.backup(world.cluster, world.location, name=f"bulk-{i:03d}")
    page = login(world.users["admin"]).get(reverse("backup_list"), {"q": "bulk", "sort": "name"})
    html = page.content.decode()
    assert "?q=bulk&amp;sort=name&amp;page=2" in html
    assert 'value="bulk"' in html and '<option value="name" selected' in html


@pytest.mark.parametrize(
    ("page", "query", "shown", "hidden"),
    [
        ("restore_list", {"q": "nothing-like-it"}, "No restores match", None),
        ("etcd_snapshot_list", {"status": "failed"}, "No snapshots match", None),
        ("location_list", {"q": "payments"}, "payments-store", None),
        ("location_list", {"provider": "s3"}, "No locations match", "payments-store"),
        ("schedule_list", {"state": "True"}, "No schedules match", None),
        ("schedule_list", {"q": "nightly"}, "nightly", None),
    ],
)
def test_every_list_filters(world, login, page, query, shown, hidden):
    html = login(world.users["admin"]).get(reverse(page), query).content.decode()
    assert shown in html
    if hidden:
        assert hidden not in html


def test_the_audit_trail_filters(world, login):
    from workspaces import audit

    audit.record(world.users["admin"], "backed up", world.backup)
    audit.record(world.users["operator"], "restored", world.restore)
    client = login(world.users["admin"])
    url = reverse("workspace_audit", args=[world.workspace.slug])
    html = client.get(url, {"q": "restored"}).content.decode()
    assert "restored" in html and "backed up" not in html
