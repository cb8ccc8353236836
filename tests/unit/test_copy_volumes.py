"""A second copy of a backup takes its volume copies along: a restic copy is read from
the origin's repository and written into the destination's own (the real restic
binary, filesystem locations); a copy whose bytes differ from the backup's record
fails and leaves nothing in the destination."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import pytest

from backups import copies
from backups.engine.storage.layout import Layout
from backups.engine.volumes.copystore import RESTIC, CopyStore
from backups.engine.volumes.restic import restic_binary
from backups.engine_inputs import store
from backups.models import Status
from locations.providers import get_provider
from tests import factories

pytestmark = pytest.mark.skipif(not restic_binary(), reason="restic is not installed")

DATA = os.urandom(3 * 1024 * 1024)


def location(world, tmp_path, name, **extra):
    (tmp_path / name).mkdir()
    return factories.location(world.workspace, name, path=str(tmp_path / name), **extra)


def backed_up(world, source, name: str, sha256: str | None = None):
    """A backup in ``source`` whose one volume copy is a restic snapshot of DATA."""
    provider = get_provider(source)
    layout = Layout(source.prefix)
    mine = CopyStore(store(source, provider))
    try:
        assert mine.format() == RESTIC
        with mine.writer(name, "shop", "data") as writer:
            writer.write(DATA)
        record = mine.record(writer, name, "shop", "data", len(DATA),
                             sha256 or hashlib.sha256(DATA).hexdigest())  # fmt: skip
    finally:
        mine.close()
    entries = [{"namespace": "shop", "claim": "data", "copy": record}]
    provider.put_bytes(layout.backup_file(name, "archive"), b"\x1f\x8b" + b"x" * 100)
    provider.put_bytes(layout.backup_file(name, "volumecopies"),
                       gzip.compress(json.dumps(entries).encode()))  # fmt: skip
    provider.close()
    return factories.backup(world.cluster, source, name=name, include_disks=True)


def copies_in(location, name: str) -> list[dict]:
    provider = get_provider(location)
    try:
        raw = provider.get_bytes(Layout(location.prefix).backup_file(name, "volumecopies"))
    finally:
        provider.close()
    return json.loads(gzip.decompress(raw))


def read_back(location, record: dict) -> bytes:
    provider = get_provider(location)
    mine = CopyStore(store(location, provider))
    try:
        stream = mine.open(record, "data")
        try:
            return b"".join(iter(lambda: stream.read(1 << 20), b""))
        finally:
            stream.close()
    finally:
        mine.close()
        provider.close()


def test_a_copy_brings_its_restic_volume_copies_into_the_other_location(world, tmp_path):
    source = location(world, tmp_path, "src")
    target = location(world, tmp_path, "dst", prefix="elsewhere")
    backup = backed_up(world, source, "with-volume")

    copy = copies.copy_backup(backup, target)

    assert copy.status == Status.COMPLETED, copy.error
    [entry] = copies_in(target, "with-volume")
    record = entry["copy"]
    assert record["format"] == RESTIC and record["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert record["repository"] != copies_in(source, "with-volume")[0]["copy"]["repository"]
    assert read_back(target, record) == DATA
    # The original can go: the copy restores from its own location.
    source_repo = tmp_path / "src" / "volumes-restic"
    assert source_repo.is_dir()
    assert (tmp_path / "dst" / "elsewhere-volumes-restic" / "shop" / "snapshots").is_dir()


def test_a_volume_copy_that_differs_from_its_record_fails_the_copy_and_leaves_nothing(
    world, tmp_path
):
    source = location(world, tmp_path, "src")
    target = location(world, tmp_path, "dst")
    backup = backed_up(world, source, "damaged", sha256="0" * 64)

    copy = copies.copy_backup(backup, target)

    assert copy.status == Status.FAILED and "differs from the one recorded" in copy.error
    assert not (tmp_path / "dst" / "backups" / "damaged").exists()
    snapshots = tmp_path / "dst" / "volumes-restic" / "shop" / "snapshots"
    assert not snapshots.exists() or not any(snapshots.iterdir())
