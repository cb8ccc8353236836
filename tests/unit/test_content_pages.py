"""The content browser pages and filters a backup's items from its archive's index (read
once per process, cached under the backup's identity), and refuses bad filters with 400."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from django.urls import reverse

from backups.engine.velero import catalogue, index, reader
from backups.engine.velero.catalogue import Catalogue
from backups.models import Backup
from locations.models import BackupLocation
from locations.providers.filesystem import FilesystemProvider
from tests.conftest import PERSONAS
from tests.unit.test_archive_index import LAYOUT, NAME, write_archive

LISTING = {
    "v1/ConfigMap": [f"ns-{i % 4}/cm-{i}" for i in range(1000)],
    "v1/Namespace": [f"ns-{i}" for i in range(4)],
    "apps/v1/Deployment": ["ns-1/web", "ns-2/web", "ns-1/api"],
}


def names(page) -> list[tuple[str, str, str]]:
    return [
        (row["type"], ns, name)
        for row in page.rows
        for ns, listed in row["namespaces"]
        for name in listed
    ]


def test_pages_cover_every_item_once_in_order():
    found = Catalogue.of_listing(LISTING)
    assert found.size == 1007
    seen = []
    first = found.page(size=100)
    assert (first.total, first.pages, first.first, first.last) == (1007, 11, 1, 100)
    for number in range(1, 12):
        seen += names(found.page(number=number, size=100))
    assert len(seen) == len(set(seen)) == 1007
    assert seen[:3] == [("apps/v1/Deployment", "ns-1", "api"), ("apps/v1/Deployment", "ns-1", "web"),
                        ("apps/v1/Deployment", "ns-2", "web")]  # fmt: skip
    assert seen[-1] == ("v1/Namespace", "", "ns-3")
    last = found.page(number=999, size=100)  # past the end: the last page
    assert (last.number, last.first, last.last) == (11, 1001, 1007)
    # A page that spans two types: each row counts all of its type's matches.
    middle = found.page(number=11, size=100)
    assert [(r["type"], r["count"]) for r in middle.rows] == [("v1/ConfigMap", 1000),
                                                              ("v1/Namespace", 4)]  # fmt: skip


def test_filters_by_kind_namespace_and_name():
    found = Catalogue.of_listing(LISTING)
    page = found.page(namespace="ns-1")
    assert page.total == 250 + 2  # cluster-scoped Namespaces are in no namespace
    assert {ns for _t, ns, _n in names(page)} == {"ns-1"}
    assert names(found.page(kind="Deployment")) == names(found.page(kind="apps/v1/Deployment"))
    assert names(found.page(kind="Deployment", name="we")) == [
        ("apps/v1/Deployment", "ns-1", "web"), ("apps/v1/Deployment", "ns-2", "web")
    ]  # fmt: skip
    assert names(found.page(namespace="ns-1", name="cm-99")) == [
        ("v1/ConfigMap", "ns-1", "cm-993"), ("v1/ConfigMap", "ns-1", "cm-997"),
    ]  # fmt: skip
    # the name filter looks at the name, not the namespace
    assert found.page(name="ns-").total == 4
    empty = found.page(namespace="ns-", kind="Nope")
    assert (empty.total, empty.rows, empty.first, empty.pages) == (0, [], 0, 1)


def test_the_cache_is_keyed_and_bounded(monkeypatch):
    monkeypatch.setattr(catalogue, "CACHE_ENTRIES", 2)
    made = []

    def maker(label, size=1):
        def make():
            made.append(label)
            return Catalogue.of_listing({"v1/ConfigMap": [f"{label}/{i}" for i in range(size)]})

        return make

    a = catalogue.cached(("backup", 1), maker("a"))
    assert catalogue.cached(("backup", 1), maker("other")) is a  # read once
    b = catalogue.cached(("backup", 2), maker("b"))
    assert b is not a and names(b.page())[0][1] == "b"
    catalogue.cached(("backup", 1), maker("a"))  # a used last: b goes first
    catalogue.cached(("backup", 3), maker("c"))
    assert made == ["a", "b", "c"]
    catalogue.cached(("backup", 2), maker("b"))
    assert made == ["a", "b", "c", "b"]
    # Past CACHE_ITEMS only the newest stays, however large it is.
    monkeypatch.setattr(catalogue, "CACHE_ITEMS", 10)
    catalogue.cached(("backup", 4), maker("d", 50))
    catalogue.cached(("backup", 3), maker("c"))
    assert made[-2:] == ["d", "c"]
    catalogue.cached(("backup", 4), maker("d", 50))
    assert made[-1] == "d"


# --- the view, over a real archive --------------------------------------------------------


@pytest.fixture
def stored(world, tmp_path, settings):
    """The world's backup as a 3,000-ConfigMap archive with its index, in a directory."""
    settings.PALETTE_FILESYSTEM_ROOTS = [str(tmp_path)]
    provider = FilesystemProvider(str(tmp_path))
    write_archive(provider, 3000)
    results = LAYOUT.backup_file(NAME, "results")
    provider.put_bytes(results, gzip.compress(json.dumps({"errors": {}}).encode()))
    archive = tmp_path / LAYOUT.backup_file(NAME, "archive")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    BackupLocation.objects.filter(pk=world.location.pk).update(
        path=str(tmp_path), prefix=LAYOUT.prefix
    )
    Backup.objects.filter(pk=world.backup.pk).update(name=NAME, sha256=sha)
    return provider


def contents(world, client, **query):
    return client.get(reverse("backup_contents", args=[world.backup.pk]), query,
                      HTTP_HX_REQUEST="true")  # fmt: skip


def test_the_contents_are_paged_through_the_index(world, login, stored):
    client = login(world.users["viewer"])
    page = contents(world, client).content.decode()
    assert "Items 1–200 of 3000." in page and "Page 1 of 15" in page
    assert page.count('class="item"') == 200
    assert "page=2" in page and 'rel="prev"' not in page
    deep = contents(world, client, page="14").content.decode()
    assert "Items 2601–2800 of 3000." in deep and 'rel="prev"' in deep
    filtered = contents(world, client, namespace="ns-7", name="cm-19").content.decode()
    assert "cm-1927</a>" in filtered and "cm-19</a>" not in filtered  # cm-19 is in ns-19
    assert "matching." in filtered and "namespace=ns-7&amp;name=cm-19" not in filtered  # one page
    assert "No object of the backup matches." in contents(world, client, name="zz").content.decode()


@pytest.mark.parametrize(
    "query",
    [{"page": "two"}, {"page": "-1"}, {"page": "9" * 12}, {"name": "x" * 300},
     {"kind": "v1/ConfigMap|ns|x"}],
)  # fmt: skip
def test_a_filter_that_cannot_be_is_a_400(world, login, stored, query):
    response = contents(world, login(world.users["viewer"]), **query)
    assert response.status_code == 400


def test_an_index_of_another_archive_is_not_used(world, login, stored):
    Backup.objects.filter(pk=world.backup.pk).update(sha256="0" * 64)
    resource_list = LAYOUT.backup_file(NAME, "resource-list")
    stored.put_bytes(resource_list, gzip.compress(b'{"v1/ConfigMap": ["ns-1/listed"]}'))
    page = contents(world, login(world.users["viewer"])).content.decode()
    assert "listed</a>" in page and "Items 1–1 of 1." in page


def test_one_item_reads_through_the_cached_index(world, login, stored, monkeypatch):
    client = login(world.users["viewer"])
    contents(world, client)  # the page read the index
    ranges = []
    monkeypatch.setattr(index, "read_index", lambda *a: pytest.fail("the index read again"))
    monkeypatch.setattr(reader, "_scan_for_item", lambda *a: pytest.fail("the archive read"))
    ranged = FilesystemProvider.read_range
    monkeypatch.setattr(FilesystemProvider, "read_range",
                        lambda self, *a: ranges.append(a) or ranged(self, *a))  # fmt: skip
    url = reverse("backup_item", args=[world.backup.pk])
    response = client.get(url, {"type": "v1/ConfigMap", "namespace": "ns-7", "name": "cm-2007"})
    assert response.status_code == 200 and "name: cm-2007" in response.content.decode()
    assert len(ranges) == 1  # one member


@pytest.mark.parametrize("persona", PERSONAS)
def test_who_may_see_a_filtered_page(world, login, client, stored, persona):
    if persona == "anonymous":
        response = contents(world, client, namespace="ns-1", page="2")
        assert response.status_code == 302
        return
    response = contents(world, login(world.users[persona]), namespace="ns-1", page="2")
    sees = persona != "outsider"
    assert response.status_code == (200 if sees else 404)
    assert ("cm-" in response.content.decode()) is sees
