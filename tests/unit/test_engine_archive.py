"""The archive format: paths, tar records, the gzip stream, page splitting, reading back."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest
from django.urls import reverse

from backups.engine.kube.pages import decode_page, type_prefix, with_type
from backups.engine.storage.layout import Layout
from backups.engine.velero.archive import ArchiveWriter, ItemRecords, item_path, tar_entry
from backups.engine.velero.reader import find_item, iter_files, resource_list
from locations.providers.filesystem import FilesystemProvider


def test_item_paths_follow_velero():
    assert item_path("configmaps", "shop", "cfg") == "resources/configmaps/namespaces/shop/cfg.json"
    assert (
        item_path("deployments.apps", "shop", "web", "v1")
        == "resources/deployments.apps/v1-preferredversion/namespaces/shop/web.json"
    )
    assert (
        item_path("persistentvolumes", None, "pv1")
        == "resources/persistentvolumes/cluster/pv1.json"
    )
    assert (
        item_path("customresourcedefinitions.apiextensions.k8s.io", None, "w.demo.io", "v1")
        == "resources/customresourcedefinitions.apiextensions.k8s.io/v1-preferredversion/cluster/w.demo.io.json"
    )


@pytest.mark.parametrize(
    "path",
    [
        "metadata/version",
        "x" * 100,
        "resources/secrets/namespaces/" + "n" * 63 + "/" + "s" * 60 + ".json",  # USTAR prefix
        "resources/clusterroles.rbac.authorization.k8s.io/cluster/" + "r" * 240 + ".json",  # PAX
        "resources/configmaps/namespaces/ns/caf\u00e9.json",  # non-ASCII: PAX
    ],
)
def test_tar_records_read_back_with_tarfile(path):
    data = b'{"a":1}'
    stream = io.BytesIO(tar_entry(path, data, 1_700_000_000) + bytes(1024))
    with tarfile.open(fileobj=stream) as tar:
        (member,) = tar.getmembers()
        assert member.name == path and member.isfile()
        assert member.mode == 0o755 and member.mtime == 1_700_000_000
        assert tar.extractfile(member).read() == data


class Sink:
    def __init__(self):
        self.buffer = io.BytesIO()

    def write(self, data):
        return self.buffer.write(data)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("shop", "cfg"),
        ("", "pv1"),  # cluster-scoped
        ("shop", "x" * 40),  # the versioned path passes 100 bytes: USTAR prefix
        ("shop", "y" * 200),  # past USTAR: PAX headers
        ("shop", "caf\u00e9"),  # not ASCII
    ],
)
@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 3000])
def test_item_records_equal_two_tar_entries(namespace, name, size):
    data = b"{" + b"a" * max(size - 2, 0) + b"}" if size > 1 else b"{" * size
    out: list[bytes] = []
    ItemRecords("deployments.apps", "v1", 1_700_000_000).add(out, namespace, name, data)
    expected = tar_entry(
        item_path("deployments.apps", namespace, name), data, 1_700_000_000
    ) + tar_entry(item_path("deployments.apps", namespace, name, "v1"), data, 1_700_000_000)
    assert b"".join(out) == expected


def test_archive_writer_makes_gzip_over_tar_with_the_version_first():
    sink = Sink()
    archive = ArchiveWriter(sink, mtime=1)
    archive.add_version_file()
    archive.write_records(tar_entry("resources/pods/namespaces/a/p.json", b"{}", 1))
    size, sha = archive.finish()
    blob = sink.buffer.getvalue()
    assert size == len(blob) and sha == hashlib.sha256(blob).hexdigest()
    assert blob[:2] == b"\x1f\x8b"
    entries = list(iter_files(io.BytesIO(blob)))
    assert entries[0] == ("metadata/version", b"1.1.0\n")
    assert entries[1] == ("resources/pods/namespaces/a/p.json", b"{}")
    # Standard tools read it too.
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        assert [m.type for m in tar.getmembers()] == [tarfile.REGTYPE] * 2


LIST_PAGE = (
    b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"9",'
    b'"continue":"tok","remainingItemCount":3},"items":['
    b'{"metadata":{"name":"a","namespace":"n","labels":{"x":"1"},"uid":"u1"},"data":{"k":"caf\xc3\xa9"}},'
    b'{"metadata":{"name":"b","namespace":"n","deletionTimestamp":"2026-01-01T00:00:00Z"}},'
    b'{"apiVersion":"demo.io/v1","kind":"Widget","metadata":{"name":"c"}}]}'
)


def test_pages_keep_each_items_bytes_and_add_the_type():
    page = decode_page(LIST_PAGE)
    assert page.continue_token == "tok" and page.remaining == 3 and page.api_version == "v1"
    a, b, c = page.items
    assert (a.name, a.namespace, a.labels, a.deleting, a.typed) == (
        "a",
        "n",
        {"x": "1"},
        False,
        False,
    )
    assert b.deleting and c.typed and c.namespace == ""
    prefix = type_prefix("v1", "ConfigMap")
    typed = with_type(a, prefix)
    assert typed.startswith(b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"')
    doc = json.loads(typed)
    assert doc["data"]["k"] == "caf\u00e9" and doc["metadata"]["uid"] == "u1"
    assert with_type(c, prefix) == c.raw  # custom resources carry their type already


def test_an_empty_list_page():
    page = decode_page(b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}')
    assert page.items == [] and page.continue_token == "" and page.remaining is None


def test_reader_finds_items_and_the_resource_list(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    layout = Layout("pfx")
    name = "b1"
    with provider.open_write(layout.backup_file(name, "archive")) as sink:
        archive = ArchiveWriter(sink)
        archive.add_version_file()
        cm = b'{"kind":"ConfigMap","apiVersion":"v1","data":{"a":"1"}}'
        archive.add_file(
            item_path("configmaps", "shop", "cfg", "v1"), b'{"kind":"ConfigMap","apiVersion":"v1"}'
        )
        archive.add_file(item_path("configmaps", "shop", "cfg"), cm)
        # An archive with only the preferred-version copy is read from there.
        widget = b'{"kind":"Widget","apiVersion":"demo.io/v2"}'
        archive.add_file(item_path("widgets.demo.io", None, "w", "v2"), widget)
        archive.finish()
    provider.put_bytes(
        layout.backup_file(name, "resource-list"),
        gzip.compress(json.dumps({"v1/ConfigMap": ["shop/cfg"]}).encode()),
    )
    # The unversioned copy wins over the preferred-version one met first.
    found = find_item(provider, layout, name, "v1/ConfigMap", "shop", "cfg")
    assert found == json.loads(cm)
    found = find_item(provider, layout, name, "demo.io/v2/Widget", "", "w")
    assert found == json.loads(widget)
    assert find_item(provider, layout, name, "v1/ConfigMap", "shop", "nope") is None
    assert find_item(provider, layout, name, "v1/Secret", "shop", "cfg") is None
    assert resource_list(provider, layout, name) == {"v1/ConfigMap": ["shop/cfg"]}


def test_a_damaged_archive_is_a_sentence_on_the_item_page(world, login, tmp_path):
    world.location.path = str(tmp_path)
    world.location.save()
    layout = Layout(world.location.prefix)
    target = tmp_path / layout.backup_file(world.backup.name, "archive")
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(b"not a tar archive, but long enough" * 20)[:-9])  # truncated
    client = login(world.users["admin"])
    url = reverse("backup_item", args=[world.backup.pk]) + "?type=v1/ConfigMap&namespace=a&name=b"
    response = client.get(url)
    assert response.status_code == 200
    assert "Cannot read the archive: The archive is damaged" in response.content.decode()
