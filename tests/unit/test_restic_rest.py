"""The REST adapter restic reaches a location through, with the real restic binary over
a FilesystemProvider (and a sealed one): dedup, dump, forget + prune, the path checks,
the token, and no password in any reason."""

from __future__ import annotations

import base64
import http.client
import os
import random

import pytest

from backups.engine.storage.base import StorageError
from backups.engine.storage.sealed import SealedProvider
from backups.engine.volumes.restic import Repository, ResticError, restic_binary
from backups.engine.volumes.restic_rest import ResticServer
from locations.providers.filesystem import FilesystemProvider

pytestmark = pytest.mark.skipif(restic_binary() is None, reason="restic is not installed")
ROOT = "p-volumes-restic"
PASSWORD = "not-a-real-password-" + "x" * 20


def volume(size: int, seed: int) -> bytes:
    """Incompressible bytes, the same for the same seed."""
    return random.Random(seed).randbytes(size)


@pytest.fixture
def provider(tmp_path):
    return FilesystemProvider(str(tmp_path), roots=[str(tmp_path)])


@pytest.fixture
def server(provider):
    with ResticServer(provider, ROOT) as srv:
        yield srv


def back_up(repo: Repository, data: bytes, tag: str = "palette-backup=b1"):
    writer = repo.backup("claim.tar", [tag])
    with writer:
        for at in range(0, len(data), 1 << 20):
            writer.write(data[at : at + (1 << 20)])
    return writer


def dump(repo: Repository, snapshot: str) -> bytes:
    reader = repo.dump(snapshot, "claim.tar")
    parts = []
    try:
        while piece := reader.read(1 << 20):
            parts.append(piece)
    finally:
        reader.close()
    return b"".join(parts)


def packs(root) -> dict[str, int]:
    found = {}
    for folder, _dirs, files in os.walk(root / ROOT / "ns1" / "data"):
        for name in files:
            found[name] = os.path.getsize(os.path.join(folder, name))
    return found


def test_it_deduplicates_a_second_backup_and_dumps_it_byte_identical(server, tmp_path):
    repo = Repository(server, "ns1", PASSWORD)
    data = volume(24 << 20, 1)
    first = back_up(repo, data)
    assert first.snapshot and first.data_added > len(data) * 0.9
    second = back_up(repo, data, "palette-backup=b2")
    assert second.snapshot != first.snapshot
    assert second.data_added < len(data) // 100
    assert dump(repo, second.snapshot) == data
    assert dump(repo, first.snapshot) == data
    # restic's layout: data under two hex digits, the repository under its root only
    keys = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(k.startswith(f"{ROOT}/ns1/") for k in keys)
    assert all(k.split("/")[4].startswith(k.split("/")[3]) for k in keys if "/data/" in k)


def test_it_forgets_and_prunes_what_only_the_forgotten_snapshot_used(server, tmp_path):
    repo = Repository(server, "ns1", PASSWORD)
    kept = back_up(repo, volume(8 << 20, 2), "palette-backup=keep")
    before = packs(tmp_path)
    gone = back_up(repo, volume(8 << 20, 3), "palette-backup=gone")
    with_both = packs(tmp_path)
    assert len(with_both) > len(before)
    ids = [s["id"] for s in repo.snapshots("palette-backup=gone")]
    assert len(ids) == 1 and ids[0].startswith(gone.snapshot)
    repo.forget(ids)
    assert repo.prune() is True
    after = packs(tmp_path)
    assert sum(after.values()) < sum(with_both.values()) - (6 << 20)
    assert [s["tags"] for s in repo.snapshots()] == [["palette-backup=keep"]]
    assert dump(repo, kept.snapshot) == volume(8 << 20, 2)


def test_it_works_over_a_sealed_location(provider, tmp_path):
    key = os.urandom(32)
    sealed = SealedProvider(provider, lambda: ("k-0123456789abcdef", key), lambda _id: key)
    with ResticServer(sealed, ROOT) as srv:
        repo = Repository(srv, "ns1", PASSWORD)
        data = volume(6 << 20, 4)
        first = back_up(repo, data)
        second = back_up(repo, data, "palette-backup=b2")
        assert second.data_added < len(data) // 100
        assert dump(repo, first.snapshot) == data
        repo.forget([first.snapshot])
        assert repo.prune() is True  # prune checks every pack's listed size
    stored = [p for p in (tmp_path / ROOT / "ns1").rglob("*") if p.is_file()]
    assert stored and all(p.read_bytes().startswith(b"PALSEAL1") for p in stored)


def request(server, method: str, path: str, token: str | None = None, body: bytes = b""):
    token = server.token if token is None else token
    auth = base64.b64encode(f"palette:{token}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body or None, headers={"Authorization": f"Basic {auth}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


NAME = "a" * 64


@pytest.mark.parametrize(
    "path",
    [
        "/ns1/../etc/passwd",
        f"/ns1/data/../../{NAME}",
        "/ns1/%2e%2e/config",
        "/ns1//config",
        f"/ns1/other/{NAME}",
        f"/ns1/data/{NAME[:-1]}",
        f"/ns1/data/{NAME.upper()}",
        f"/ns1/data/{NAME}/x",
        f"/NS/data/{NAME}",
        f"/-ns/data/{NAME}",
        "/ns1/configx",
        "/config",
        "/",
        f"/ns1/data/{NAME}?x=1",
        f"/ns1/data/../../../{NAME}",
    ],
)
def test_it_answers_400_to_anything_outside_a_repository(server, tmp_path, path):
    before = sorted(tmp_path.rglob("*"))
    for method in ("GET", "HEAD", "POST", "DELETE"):
        status, _ = request(server, method, path, body=b"x" if method == "POST" else b"")
        assert status == 400, (method, path)
    assert sorted(tmp_path.rglob("*")) == before


def test_it_answers_401_without_the_token(server, tmp_path):
    for token in ("", "wrong", server.token + "x"):
        assert request(server, "POST", f"/ns1/keys/{NAME}", token, b"x")[0] == 401
        assert request(server, "GET", "/ns1/keys/", token)[0] == 401
    assert not list(tmp_path.rglob("*"))


def test_it_refuses_an_object_whose_content_is_not_its_name(server, tmp_path):
    assert request(server, "POST", f"/ns1/keys/{NAME}", body=b"not that")[0] == 400
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_the_password_and_token_never_reach_a_reason(server):
    Repository(server, "ns1", PASSWORD).ensure()
    wrong = Repository(server, "ns1", "another-" + PASSWORD)
    with pytest.raises(ResticError) as caught:
        wrong.snapshots()
    reason = str(caught.value)
    assert "wrong password" in reason
    assert PASSWORD not in reason and server.token not in reason
    assert "127.0.0.1" not in reason or "***" in reason


class FailingWrites(FilesystemProvider):
    """Writes fail once ``after`` data objects went through."""

    def __init__(self, *args, after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = after

    def open_write(self, key, content_type="application/octet-stream"):
        if "/data/" in key:
            self.after -= 1
            if self.after < 0:
                raise StorageError("The disk is full (a test's failure).")
        return super().open_write(key, content_type)


def test_a_store_that_fails_mid_backup_stops_restic_and_leaves_no_snapshot(tmp_path):
    provider = FailingWrites(str(tmp_path), roots=[str(tmp_path)], after=1)
    with ResticServer(provider, ROOT) as srv:
        repo = Repository(srv, "ns1", PASSWORD)
        with pytest.raises(StorageError) as caught:
            back_up(repo, volume(64 << 20, 5))
        assert "The disk is full" in str(caught.value)
        assert PASSWORD not in str(caught.value)
        assert repo.snapshots() == []


def test_without_restic_copies_are_tar_files_and_say_why(server, provider, monkeypatch):
    from backups.engine.inputs import Store
    from backups.engine.volumes.copystore import CopyStore

    monkeypatch.setattr("backups.engine.volumes.restic.shutil.which", lambda _name: None)
    with pytest.raises(ResticError, match="restic is not installed"):
        Repository(server, "ns1", PASSWORD)
    copies = CopyStore(Store(provider, "loc", "p", restic_password=lambda _ns: PASSWORD))
    assert copies.format() == "tar"
    assert copies.why_tar() == "restic is not installed on this worker"
    with copies.writer("b1", "ns1", "claim") as writer:
        writer.write(b"a tar stream")
    assert copies.record(writer, "b1", "ns1", "claim", 12, "f" * 64)["format"] == "tar"
    assert (provider.get_bytes("p/backups/b1/volumes/ns1/claim.tar")) == b"a tar stream"
