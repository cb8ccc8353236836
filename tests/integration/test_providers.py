"""Every provider against its real peer: the same contract, the same validation.

Peers: a temporary directory, the MinIO server (through the minio client and
through boto3), moto (S3 with static keys and through STS AssumeRole), the
fake-gcs-server emulator and Azurite (account key and connection string).
"""

from __future__ import annotations

import io
import os
import tarfile
import uuid

import pytest

from backups.engine.storage.layout import Layout
from locations.providers import NotFound, get_provider
from locations.validation import validate, validate_and_record
from tests.integration.provider_support import STORES, Peek, location

pytestmark = pytest.mark.integration


@pytest.fixture(params=list(STORES))
def store(request, tmp_path):
    """(kind, unsaved location, Peek) for a fresh, empty bucket of each kind."""
    kind = request.param
    if STORES[kind] is None:
        bucket = str(tmp_path / "store")
        os.mkdir(bucket)
        env = {}
    else:
        env = request.getfixturevalue("devenv")
        bucket = request.getfixturevalue(STORES[kind])
    return kind, location(kind, env, bucket, prefix="team/velero"), Peek(request, kind, bucket)


def test_validation_succeeds_and_leaves_nothing(store):
    kind, loc, peek = store
    result = validate(loc)
    assert result.ok, result.message
    assert result.reason == "ok"
    assert result.message.startswith("Available")
    assert result.warnings == []
    assert peek.keys() == []
    if kind == "filesystem":
        assert peek.directories() == []


def test_objects_round_trip_list_and_delete(store):
    _, loc, peek = store
    layout = Layout(loc.prefix)
    provider = get_provider(loc)
    try:
        meta = layout.backup_file("b1", "metadata")
        provider.put_bytes(meta, b'{"kind": "Backup"}', "application/json")
        provider.put_bytes(layout.backup_file("b1", "logs"), b"")
        provider.put_bytes(layout.backup_file("b2", "metadata"), b"{}")
        assert provider.get_bytes(meta) == b'{"kind": "Backup"}'
        assert provider.get_bytes(layout.backup_file("b1", "logs")) == b""
        assert provider.exists(meta)
        assert not provider.exists(layout.backup_file("b3", "metadata"))
        listed = list(provider.list(layout.backup_dir("b1")))
        assert [info.key for info in listed] == sorted([meta, layout.backup_file("b1", "logs")])
        assert {info.size for info in listed} == {0, 18}
        assert len(list(provider.list(layout.backups_dir))) == 3
        assert provider.list_folders(loc.prefix) == ["backups"]
        provider.put_bytes(meta, b"rewritten")
        assert provider.get_bytes(meta) == b"rewritten"
        provider.delete(meta)
        provider.delete(meta)  # deleting a missing key is not an error
        assert not provider.exists(meta)
        with pytest.raises(NotFound):
            provider.open_read(meta)
        assert provider.delete_prefix(layout.backups_dir) == 2
        assert list(provider.list(loc.prefix)) == []
    finally:
        provider.close()
    assert peek.keys() == []


def test_a_tarball_streams_through_tarfile(store):
    """The engine's use: tarfile writes into open_write and reads from open_read."""
    _, loc, _ = store
    provider = get_provider(loc)
    key = Layout(loc.prefix).backup_file("b1", "archive")
    members = {f"resources/pods/namespaces/ns/p{i}.json": os.urandom(300_000) for i in range(40)}
    try:
        with (
            provider.open_write(key, "application/gzip") as writer,
            tarfile.open(fileobj=writer, mode="w|gz") as tar,
        ):
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        assert writer.bytes_written > 12_000_000  # more than one part
        seen = {}
        with provider.open_read(key) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                seen[member.name] = tar.extractfile(member).read()
        assert seen == members
    finally:
        provider.delete(key)
        provider.close()


def test_an_aborted_write_leaves_no_object(store, request):
    kind, loc, peek = store
    provider = get_provider(loc)
    key = Layout(loc.prefix).backup_file("b1", "archive")
    with pytest.raises(RuntimeError), provider.open_write(key) as writer:
        writer.write(os.urandom(9 * 1024 * 1024))  # one part already sent
        writer.write(b"tail")
        raise RuntimeError("the backup failed half way")
    small = Layout(loc.prefix).backup_file("b2", "metadata")
    with pytest.raises(RuntimeError), provider.open_write(small) as writer:
        writer.write(b"{}")
        raise RuntimeError("failed before close")
    assert not provider.exists(key)
    assert not provider.exists(small)
    provider.close()
    assert peek.keys() == []
    if kind == "filesystem":
        assert peek.directories() == []
    if STORES[kind] in ("minio_bucket", "s3_bucket"):
        s3 = request.getfixturevalue("minio_s3" if STORES[kind] == "minio_bucket" else "moto_s3")
        assert s3.list_multipart_uploads(Bucket=peek.bucket).get("Uploads", []) == []


def test_a_missing_bucket_is_named(store):
    kind, loc, _ = store
    if kind == "filesystem":
        loc.path = loc.path + "-missing"
    else:
        loc.bucket = f"palette-missing-{uuid.uuid4().hex[:8]}"
    result = validate(loc)
    assert not result.ok
    assert result.reason == "bucket_missing"
    if kind == "filesystem":
        assert result.message == f"Directory '{loc.path}' does not exist"
    elif kind.startswith("azure"):
        assert result.message == f"Container '{loc.bucket}' does not exist"
    else:
        assert result.message == f"Bucket '{loc.bucket}' does not exist"


def test_an_unreachable_endpoint_is_named(store):
    kind, loc, _ = store
    if kind == "filesystem":
        pytest.skip("a directory has no endpoint")
    url = "http://127.0.0.1:1"
    if kind.startswith("azure"):
        url += "/devstoreaccount1"
        loc.credentials = {"account_name": "devstoreaccount1", "account_key": "a2V5"}
    loc.endpoint_url = url
    result = validate(loc)
    assert not result.ok
    assert result.reason == "unreachable"
    assert result.message == f"Cannot reach {url} (connection refused)"


def test_unknown_top_level_folders_give_a_warning(store):
    _, loc, peek = store
    provider = get_provider(loc)
    try:
        provider.put_bytes("team/velero/etcd-snapshots/a/s1.db", b"x")
        provider.put_bytes("team/velero/backups/b1/velero-backup.json", b"{}")
        provider.put_bytes("team/velero-etcd/a/s2.db", b"x")  # a sibling prefix is fine
        result = validate(loc)
        assert result.ok, result.message
        assert len(result.warnings) == 1
        if loc.provider == "filesystem":  # counted, not named: the server's disk
            assert "1 folder that Velero does not know" in result.warnings[0]
        else:
            assert "etcd-snapshots" in result.warnings[0]
        assert "Velero would mark this location Unavailable" in result.warnings[0]
    finally:
        for key in [i.key for i in provider.list("team/")]:
            provider.delete(key)
        provider.close()
    assert peek.keys() == []


@pytest.mark.django_db
def test_validate_and_record_stores_the_status(tmp_path):
    loc = location("filesystem", {}, str(tmp_path))
    loc.name = "recorded"
    loc.save()
    result = validate_and_record(loc)
    assert result.ok
    loc.refresh_from_db()
    assert loc.status == "available"
    assert loc.status_message.startswith("Available")
    first = loc.last_validated_at
    assert first is not None

    os.rmdir(tmp_path)
    result = validate_and_record(loc)
    assert result.reason == "bucket_missing"
    loc.refresh_from_db()
    assert loc.status == "unavailable"
    assert loc.status_message == f"Directory '{tmp_path}' does not exist"
    assert loc.last_validated_at > first


def test_range_reads_return_the_bytes_asked_for(store):
    _, loc, _peek = store
    provider = get_provider(loc)
    data = os.urandom(2 * 1024 * 1024 + 333)
    try:
        provider.put_bytes("team/velero/backups/r/blob", data)
        for start, length in [(0, 1), (1000, 70_000), (len(data) - 5, 5), (len(data) - 5, 100)]:
            assert (
                provider.read_range("team/velero/backups/r/blob", start, length)
                == (data[start : start + length])
            ), (start, length)
        assert provider.read_range("team/velero/backups/r/blob", len(data) + 10, 5) == b""
        assert provider.read_range("team/velero/backups/r/blob", 3, 0) == b""
        with pytest.raises(NotFound):
            provider.read_range("team/velero/backups/r/missing", 0, 10)
    finally:
        provider.close()


def test_an_item_is_read_through_the_index_with_one_ranged_read(store):
    """The content browser's path: the index, then one member by range, on every store;
    sealed (client-side encrypted) too, mapped onto its chunks."""
    from backups.engine.storage.sealed import SealedProvider
    from backups.engine.velero import index
    from backups.engine.velero.archive import ArchiveWriter, ItemRecords
    from backups.engine.velero.reader import find_item

    _, loc, _peek = store
    plain = get_provider(loc)
    key = os.urandom(32)
    sealed = SealedProvider(plain, lambda: ("k1", key), {"k1": key}.__getitem__)
    layout = Layout(loc.prefix)
    try:
        for name, provider in (("plain", plain), ("sealed", sealed)):
            with provider.open_write(layout.backup_file(name, "archive")) as sink:
                archive = ArchiveWriter(sink, member_bytes=64 * 1024)
                archive.add_version_file()
                made, out, names = ItemRecords("configmaps", "v1", 1), [], []
                for i in range(400):
                    body = f'{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c{i}"}},"data":{{"k":"{os.urandom(200).hex()}"}}}}'
                    made.add(out, "shop", f"c{i}", body.encode())
                    names.append(f"shop/c{i}")
                archive.write_items("v1/ConfigMap", made, names, b"".join(out))
                archive.finish()
            provider.put_bytes(
                layout.backup_file(name, "archive-index"), index.encode(archive.index())
            )
            assert len(archive.members) > 5
            ranges = []
            real = type(plain).read_range

            def counted(self, key, start, length, ranges=ranges, real=real):
                data = real(self, key, start, length)
                ranges.append(len(data))
                return data

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(type(plain), "read_range", counted)
                found = find_item(provider, layout, name, "v1/ConfigMap", "shop", "c377")
            assert found["metadata"]["name"] == "c377"
            # plain: one member; sealed: its header and the one chunk (this archive is
            # smaller than a chunk), each opened as in a whole read
            limit = archive.size * 0.3 if name == "plain" else archive.size + 16 + 300
            assert ranges and sum(ranges) < limit, ranges
    finally:
        plain.close()
