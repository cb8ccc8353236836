"""The archive as gzip members with an index beside it: Velero-format readers still read
it whole, and one item is read by reading only its member (bytes read, counted)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import zlib

import pytest
from django.test import override_settings

from backups.engine.storage.base import Provider
from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import SealedProvider
from backups.engine.velero import index
from backups.engine.velero.archive import ArchiveWriter, ItemRecords, item_path
from backups.engine.velero.reader import find_item, iter_files
from locations.providers.filesystem import FilesystemProvider

NAME = "big"
LAYOUT = Layout("pfx")


class Counting(Provider):
    """A provider that counts the bytes read from the store underneath."""

    def __init__(self, inner: Provider):
        self.inner = inner
        self.read = 0
        self.ranges: list[tuple[str, int, int]] = []

    def open_write(self, key, content_type="application/octet-stream"):
        return self.inner.open_write(key, content_type)

    def open_read(self, key):
        stream = self.inner.open_read(key)
        counter = self

        class Stream(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, buffer):
                data = stream.read(len(buffer))
                buffer[: len(data)] = data
                counter.read += len(data)
                return len(data)

            def close(self):
                stream.close()
                super().close()

        return io.BufferedReader(Stream())

    def read_range(self, key, start, length):
        data = self.inner.read_range(key, start, length)
        self.read += len(data)
        self.ranges.append((key.rsplit("/", 1)[-1], start, len(data)))
        return data

    def list(self, prefix=""):
        return self.inner.list(prefix)

    def delete(self, key):
        self.inner.delete(key)

    def exists(self, key):
        return self.inner.exists(key)


def configmap(namespace: str, name: str, filler: bytes) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"k": filler.hex()},
        },
        separators=(",", ":"),
    ).encode()


def write_archive(
    provider: Provider, count: int, *, page: int = 500, with_index=True, filler: int = 48
) -> dict:
    """An archive of ``count`` ConfigMaps over 40 namespaces, written as the backup
    engine writes it (pages of ItemRecords), with its index unless told not to."""
    with provider.open_write(LAYOUT.backup_file(NAME, "archive")) as sink:
        archive = ArchiveWriter(sink, mtime=1)
        archive.add_version_file()
        for first in range(0, count, page):
            made = ItemRecords("configmaps", "v1", 1)
            out: list[bytes] = []
            names = []
            for i in range(first, min(first + page, count)):
                ns, name = f"ns-{i % 40}", f"cm-{i}"
                made.add(out, ns, name, configmap(ns, name, os.urandom(filler)))
                names.append(f"{ns}/{name}")
            archive.write_items("v1/ConfigMap", made, names, b"".join(out))
        archive.finish()
    if with_index:
        # as the backup engine writes it: one type at a time
        provider.put_bytes(LAYOUT.backup_file(NAME, "archive-index"), index.encode_writer(archive))
    return archive.index()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    with override_settings(PALETTE_FILESYSTEM_ROOTS=[tempfile.gettempdir()]):
        document = write_archive(FilesystemProvider(str(root)), 20_000)
    return root, document


def test_a_large_archive_is_many_members_and_tarfile_reads_it_whole(big):
    root, document = big
    path = root / "pfx/backups/big/big.tar.gz"
    assert len(document["members"]) > 10
    with tarfile.open(path, mode="r:gz") as tar:
        names = tar.getnames()
    assert names[0] == "metadata/version" and len(names) == 1 + 2 * 20_000
    assert "resources/configmaps/namespaces/ns-7/cm-19247.json" in names
    assert "resources/configmaps/v1-preferredversion/namespaces/ns-7/cm-19247.json" in names
    with gzip.open(path) as stream:  # gzip too reads the members as one stream
        assert len(stream.read()) == sum(m[3] for m in document["members"])
    # Every member unpacks on its own, to the tar bytes the index says.
    blob = path.read_bytes()
    tar_offset = 0
    for offset, length, start, tar_length in document["members"]:
        assert start == tar_offset
        inflate = zlib.decompressobj(31)
        assert len(inflate.decompress(blob[offset : offset + length])) == tar_length
        assert inflate.eof and not inflate.unused_data
        tar_offset += tar_length
    assert document["members"][-1][0] + document["members"][-1][1] == len(blob)


def test_members_are_bounded_and_never_split_an_item(big):
    _root, document = big
    sizes = [m[3] for m in document["members"]]
    assert max(sizes) < 1024 * 1024 + 8192  # at most one item past MEMBER_BYTES
    starts = {m[2] for m in document["members"]}
    offsets = set(document["items"]["v1/ConfigMap"].values())
    assert starts - {0} <= offsets  # each member after the first begins with an item


def test_one_item_is_read_by_reading_only_its_member(big):
    root, document = big
    store = Counting(FilesystemProvider(str(root)))
    found = find_item(store, LAYOUT, NAME, "v1/ConfigMap", "ns-7", "cm-19247")
    assert found["metadata"] == {"name": "cm-19247", "namespace": "ns-7"}
    archive_size = (root / "pfx/backups/big/big.tar.gz").stat().st_size
    index_size = (root / "pfx/backups/big/big-palette-index.json.gz").stat().st_size
    (ranged,) = store.ranges
    assert ranged[0] == "big.tar.gz" and ranged[2] < archive_size / 10
    assert store.read == index_size + ranged[2]
    assert store.read < archive_size / 5


def test_an_archive_without_index_is_read_through(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    write_archive(provider, 600, with_index=False)
    store = Counting(provider)
    found = find_item(store, LAYOUT, NAME, "v1/ConfigMap", "ns-3", "cm-563")
    assert found["metadata"]["name"] == "cm-563"
    assert not store.ranges and store.read > 0


def test_an_index_that_does_not_match_falls_back_to_reading_through(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    document = write_archive(provider, 3000)
    # Point the item at another item's records: the path check refuses it.
    items = document["items"]["v1/ConfigMap"]
    items["ns-1/cm-1"] = items["ns-2/cm-2"]
    # And a member with a range that is not a member.
    document["members"][-1][1] += 5
    provider.put_bytes(LAYOUT.backup_file(NAME, "archive-index"), index.encode(document))
    assert find_item(provider, LAYOUT, NAME, "v1/ConfigMap", "ns-1", "cm-1")["metadata"] == {
        "name": "cm-1",
        "namespace": "ns-1",
    }
    last = max(items, key=items.get)
    ns, name = last.split("/")
    assert find_item(provider, LAYOUT, NAME, "v1/ConfigMap", ns, name)["metadata"]["name"] == name


@pytest.mark.parametrize(
    "junk",
    [b"not gzip", gzip.compress(b"[1,2]"), gzip.compress(b'{"format": 99, "members": []}')],
)
def test_a_broken_index_is_ignored(tmp_path, junk):
    provider = FilesystemProvider(str(tmp_path))
    write_archive(provider, 50)
    provider.put_bytes(LAYOUT.backup_file(NAME, "archive-index"), junk)
    assert index.read_index(provider, LAYOUT, NAME) is None
    assert find_item(provider, LAYOUT, NAME, "v1/ConfigMap", "ns-9", "cm-49") is not None


def test_a_crafted_member_size_is_refused_before_reading():
    with pytest.raises(index.IndexMismatch):
        index.unpack_member(None, "k", (0, 10, 0, 2**40))


def test_records_without_names_are_not_indexed_and_not_split(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    with provider.open_write("a.tar.gz") as sink:
        archive = ArchiveWriter(sink, member_bytes=4096)
        archive.add_version_file()
        archive.add_file(item_path("pods", "a", "p"), b"{" + b" " * 9000 + b"}")
        archive.finish()
    assert archive.items == {} and len(archive.members) == 2
    with provider.open_read("a.tar.gz") as stream:
        assert [p for p, _ in iter_files(stream)] == [
            "metadata/version",
            "resources/pods/namespaces/a/p.json",
        ]


# --- range reads -------------------------------------------------------------------------


def test_range_reads_on_a_directory_and_through_the_fallback(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    data = os.urandom(3 * 1024 * 1024 + 5)
    provider.put_bytes("x/obj", data)
    for start, length in [(0, 10), (5, 1024 * 1024), (len(data) - 3, 10), (len(data) + 4, 5)]:
        assert provider.read_range("x/obj", start, length) == data[start : start + length]
        assert Provider.read_range(provider, "x/obj", start, length) == data[start : start + length]
    assert provider.read_range("x/obj", 7, 0) == b""
    with pytest.raises(ValueError):
        provider.read_range("x/obj", -1, 4)


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 1), (1024 * 1024 - 3, 10), (1024 * 1024, 1024 * 1024), (100, 3 * 1024 * 1024), (0, 9**9)],
)
def test_a_sealed_range_reads_only_the_chunks_it_needs(tmp_path, start, length):
    key = os.urandom(32)
    inner = Counting(FilesystemProvider(str(tmp_path)))
    store = SealedProvider(inner, lambda: ("k1", key), {"k1": key}.__getitem__)
    data = os.urandom(3 * 1024 * 1024 + 77)
    store.put_bytes("s/obj", data)
    inner.read, inner.ranges = 0, []
    assert store.read_range("s/obj", start, length) == data[start : start + length]
    assert inner.read <= min(length, len(data)) + 2 * (1024 * 1024 + 16) + 300


def test_a_tampered_sealed_chunk_fails_a_range_read(tmp_path):
    key = os.urandom(32)
    inner = FilesystemProvider(str(tmp_path))
    store = SealedProvider(inner, lambda: ("k1", key), {"k1": key}.__getitem__)
    store.put_bytes("s/obj", os.urandom(2 * 1024 * 1024))
    path = tmp_path / "s/obj"
    blob = bytearray(path.read_bytes())
    blob[len(blob) - 100] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(Exception, match="does not open at chunk 1"):
        store.read_range("s/obj", 1024 * 1024 + 5, 10)
    assert len(store.read_range("s/obj", 5, 10)) == 10  # chunk 0 is intact


def test_an_item_of_a_sealed_archive_is_read_through_the_index(tmp_path):
    key = os.urandom(32)
    inner = Counting(FilesystemProvider(str(tmp_path)))
    store = SealedProvider(inner, lambda: ("k1", key), {"k1": key}.__getitem__)
    write_archive(store, 6000, filler=1000)  # about 7 MiB: 7 sealed chunks
    inner.read, inner.ranges = 0, []
    found = find_item(store, LAYOUT, NAME, "v1/ConfigMap", "ns-0", "cm-5960")
    assert found["metadata"]["name"] == "cm-5960"
    archive_size = (tmp_path / "pfx/backups/big/big.tar.gz").stat().st_size
    assert [r[0] for r in inner.ranges] == ["big.tar.gz", "big.tar.gz"]
    assert archive_size > 6 * 1024 * 1024
    assert sum(r[2] for r in inner.ranges) < archive_size / 3


def test_the_index_written_one_type_at_a_time_is_the_whole_document(tmp_path):
    from backups.engine.velero.archive import ItemRecords as Records

    with io.BytesIO() as sink:
        archive = ArchiveWriter(sink, mtime=1, member_bytes=4096)
        archive.add_version_file()
        for kind, gr in (("v1/ConfigMap", "configmaps"), ("v1/Secret", "secrets")):
            for first in (0, 30):
                made, out = Records(gr, "v1", 1), []
                names = [f"ns-{i % 3}/x-{i}" for i in range(first, first + 30)]
                for key in names:
                    ns, name = key.split("/")
                    made.add(out, ns, name, configmap(ns, name, b"\xff" * 40))
                archive.write_items(kind, made, names, b"".join(out))
        archive.write_items("v1/Namespace", Records("namespaces", "v1", 1), [], b"")
        archive.finish()
    whole = archive.index()
    assert sorted(whole["items"]) == ["v1/ConfigMap", "v1/Secret"]
    assert len(whole["items"]["v1/Secret"]) == 60 and whole["items"]["v1/Secret"]["ns-0/x-0"] > 0
    assert json.loads(gzip.decompress(index.encode_writer(archive))) == json.loads(
        gzip.decompress(index.encode(whole))
    )
