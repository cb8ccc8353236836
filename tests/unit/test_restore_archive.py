"""Reading an archive for a restore: checksum, damage, Velero's layouts, the namespaces list."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from backups.engine.restore.archive import (
    ArchiveDamaged,
    ArchiveMissing,
    ChecksumMismatch,
    parse_path,
    read_contents,
    spool,
)
from backups.engine.storage.layout import Layout
from backups.engine.velero.archive import ArchiveWriter, item_path, tar_entry
from backups.engine.velero.reader import namespaces as backup_namespaces
from locations.providers.filesystem import FilesystemProvider


def cm(name: str, ns: str = "shop") -> bytes:
    return json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}
    ).encode()


def our_archive(count: int = 3) -> bytes:
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, mtime=1)
    writer.add_version_file()
    for i in range(count):
        data = cm(f"c{i}")
        writer.write_records(
            tar_entry(item_path("configmaps", "shop", f"c{i}"), data, 1)
            + tar_entry(item_path("configmaps", "shop", f"c{i}", "v1"), data, 1)
        )
    writer.add_file(item_path("namespaces", None, "shop"), b'{"kind":"Namespace"}')
    writer.finish()
    return sink.getvalue()


def tar_gz(files: dict[str, bytes], fmt=tarfile.PAX_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_our_archives_are_read_with_one_copy_per_item():
    contents = read_contents(io.BytesIO(our_archive()))
    assert contents.format_version == "1.1.0"
    assert set(contents.items) == {
        ("configmaps", "shop", "c0"), ("configmaps", "shop", "c1"), ("configmaps", "shop", "c2"),
        ("namespaces", "", "shop"),
    }  # fmt: skip
    assert contents.versions == {}  # the preferred-version twins add nothing
    assert json.loads(contents.items[("configmaps", "shop", "c1")])["metadata"]["name"] == "c1"


def test_velero_layouts_long_paths_and_other_versions_are_understood():
    long_ns = "n" * 60
    long_name = "x" * 200
    files = {
        "metadata/version": b"1.1.0\n",
        # a preferred-version copy before its main copy, as any order is allowed
        "resources/deployments.apps/v1-preferredversion/namespaces/shop/web.json": b"{}",
        "resources/deployments.apps/namespaces/shop/web.json": b'{"main":1}',
        # another version (Velero's EnableAPIGroupVersions) is kept for the fallback
        "resources/deployments.apps/v1beta2/namespaces/shop/web.json": b'{"old":1}',
        # only a versioned copy
        "resources/widgets.demo.io/v2-preferredversion/namespaces/shop/w.json": b'{"w":1}',
        f"resources/configmaps/namespaces/{long_ns}/{long_name}.json": b'{"long":1}',
    }
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        contents = read_contents(io.BytesIO(tar_gz(files, fmt)))
        assert contents.items[("deployments.apps", "shop", "web")] == b'{"main":1}'
        assert contents.versions[("deployments.apps", "shop", "web")] == {"v1beta2": b'{"old":1}'}
        assert contents.versions[("widgets.demo.io", "shop", "w")] == {
            "v2-preferredversion": b'{"w":1}'
        }
        assert contents.items[("configmaps", long_ns, long_name)] == b'{"long":1}'
    assert parse_path("resources/pods/cluster/x.json") == (("pods", "", "x"), "")
    assert parse_path("metadata/version") is None and parse_path("resources/x.json") is None


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[:-3], "truncated"),
        (lambda b: b[:200] + bytes([b[200] ^ 0x40]) + b[201:], "corrupt"),
        (lambda b: b[:-12] + bytes([b[-12] ^ 1]) + b[-11:], "corrupt"),
        (lambda b: b"", "empty"),
        (lambda b: b"PK\x03\x04 not a gzip file" * 10, "corrupt"),
    ],
)
def test_damaged_archives_are_refused(damage, reason):
    with pytest.raises(ArchiveDamaged, match=reason) as caught:
        read_contents(io.BytesIO(damage(our_archive(50))))
    assert str(caught.value).startswith("The archive is damaged: ")


def test_a_bad_tar_header_is_refused_even_in_a_valid_gzip():
    raw = bytearray(gzip.decompress(our_archive()))
    raw[1024 + 10] ^= 0x01  # a byte of the second header (after metadata/version's two blocks)
    with pytest.raises(ArchiveDamaged, match="checksum"):
        read_contents(io.BytesIO(gzip.compress(bytes(raw))))


def test_spool_checks_the_sha256_recorded_at_backup_time(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    data = our_archive()
    provider.put_bytes("backups/b/b.tar.gz", data)
    good = hashlib.sha256(data).hexdigest()
    spooled, size, sha = spool(provider, "backups/b/b.tar.gz", good.upper())
    with spooled:
        assert (size, sha) == (len(data), good) and spooled.read() == data
    with pytest.raises(ChecksumMismatch, match=f"expected {'0' * 64}, got {good}"):
        spool(provider, "backups/b/b.tar.gz", "0" * 64)
    with pytest.raises(ArchiveMissing, match="not in the location"):
        spool(provider, "backups/nope/nope.tar.gz")


def test_backup_namespaces_come_from_the_resource_list_or_the_archive(tmp_path):
    provider = FilesystemProvider(str(tmp_path))
    layout = Layout("velero")
    listing = {"v1/ConfigMap": ["shop/a", "billing/b"], "v1/Namespace": ["empty", "shop"],
               "v1/PersistentVolume": ["pv1"]}  # fmt: skip
    provider.put_bytes(
        layout.backup_file("b1", "resource-list"), gzip.compress(json.dumps(listing).encode())
    )
    assert backup_namespaces(provider, layout, "b1") == ["billing", "empty", "shop"]
    provider.put_bytes(layout.backup_file("b2", "archive"), our_archive())
    assert backup_namespaces(provider, layout, "b2") == ["shop"]
