"""Verifying a stored snapshot: recorded sha256, etcd's own checksum, etcdutl's reading."""

from __future__ import annotations

import hashlib
import io
import json
import stat

import pytest

from backups.engine.etcd.verify import verify_snapshot
from backups.engine.storage.base import NotFound

DATABASE = bytes(range(256)) * 16  # 4096 bytes: whole 512-byte pages, like a bbolt file
SNAPSHOT = DATABASE + hashlib.sha256(DATABASE).digest()


class OneObject:
    def __init__(self, key, data):
        self.key, self.data = key, data

    def open_read(self, key):
        if key != self.key:
            raise NotFound(f"No object {key}")
        return io.BytesIO(self.data)


@pytest.fixture
def etcdutl(tmp_path):
    """A stand-in for etcdutl that prints what `snapshot status -w json` prints."""
    status = {"hash": 123, "revision": 4567, "totalKey": 89, "totalSize": 4096, "version": "3.6.0"}
    script = tmp_path / "etcdutl"
    script.write_text(f"#!/bin/sh\necho '{json.dumps(status)}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_an_intact_snapshot_passes_the_three_checks(etcdutl):
    sha = hashlib.sha256(SNAPSHOT).hexdigest()
    result = verify_snapshot(OneObject("k", SNAPSHOT), "k", sha, etcdutl)
    assert result.ok, result.error
    assert result.sha256_matches and result.embedded_checksum_ok is True
    assert (result.revision, result.total_keys, result.hash) == (4567, 89, 123)
    assert result.size_bytes == len(SNAPSHOT)


def test_a_changed_object_fails_on_its_sha256(etcdutl):
    result = verify_snapshot(OneObject("k", SNAPSHOT), "k", "0" * 64, etcdutl)
    assert not result.ok and "not the recorded" in result.error


def test_damage_inside_the_database_fails_on_etcds_checksum(etcdutl):
    damaged = b"X" + SNAPSHOT[1:]
    sha = hashlib.sha256(damaged).hexdigest()
    result = verify_snapshot(OneObject("k", damaged), "k", sha, etcdutl)
    assert not result.ok and "checksum etcd wrote" in result.error
    assert result.embedded_checksum_ok is False


def test_a_snapshot_without_etcds_checksum_is_still_read(etcdutl):
    sha = hashlib.sha256(DATABASE).hexdigest()
    result = verify_snapshot(OneObject("k", DATABASE), "k", sha, etcdutl)
    assert result.ok and result.embedded_checksum_ok is None


def test_missing_object_and_missing_etcdutl_are_reported(etcdutl, tmp_path):
    result = verify_snapshot(OneObject("k", SNAPSHOT), "other", "", etcdutl)
    assert not result.ok and result.error == "Could not download the snapshot: No object other"
    result = verify_snapshot(OneObject("k", SNAPSHOT), "k", "", str(tmp_path / "nope"))
    assert not result.ok and "etcdutl was not found" in result.error


def test_etcdutl_refusing_the_file_is_reported(tmp_path):
    script = tmp_path / "etcdutl"
    script.write_text("#!/bin/sh\necho 'Error: invalid database' >&2\nexit 1\n")
    script.chmod(0o755)
    sha = hashlib.sha256(SNAPSHOT).hexdigest()
    result = verify_snapshot(OneObject("k", SNAPSHOT), "k", sha, str(script))
    assert not result.ok
    assert result.error == "etcdutl cannot read the snapshot: Error: invalid database"
