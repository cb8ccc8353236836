"""The fast path of a volume copy: the mover's dd counts, the write-behind and read-ahead
threads, and the worker's own websocket masking (it must equal the library's)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from types import SimpleNamespace

import pytest
import websocket

from backups.engine.kube.exec import STATUS, STDERR, STDOUT, mask
from backups.engine.storage.base import StorageError
from backups.engine.volumes.mover import MoveFailed, Mover, MoverSettings
from backups.engine.volumes.objects import (
    BACKUP_SCRIPT,
    BLOCK,
    RESTORE_SCRIPT,
    dd_agrees,
    without_records,
)
from backups.engine.volumes.pipeline import WriteBehind, read_ahead
from tests.unit.test_exec_threads import SUCCESS, Kube, QuietSocket


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 8, 1000, BLOCK, BLOCK + 1, BLOCK + 3])
def test_masking_equals_websocket_clients_for_every_length(length):
    data, key = os.urandom(length), os.urandom(4)
    assert mask(key, data) == websocket.ABNF.mask(key, data)


def test_the_scripts_pass_the_stream_through_dd_in_whole_blocks():
    assert f"dd bs={BLOCK} iflag=fullblock" in BACKUP_SCRIPT
    assert f"dd bs={BLOCK} iflag=fullblock" in RESTORE_SCRIPT
    assert "tee" not in BACKUP_SCRIPT + RESTORE_SCRIPT


@pytest.mark.parametrize(
    ("stderr", "size", "agrees"),
    [
        ("3+0 records in\n3+0 records out\n", 3 * BLOCK, True),
        ("3+1 records in\n3+1 records out\n", 3 * BLOCK + 512, True),
        ("0+0 records in\n0+0 records out\n", 0, True),
        ("3+0 records in\n3+0 records out\n", 3 * BLOCK + 512, False),  # bytes came from nowhere
        ("3+1 records in\n3+1 records out\n", 3 * BLOCK, False),  # a block went missing
        ("2+1 records in\n2+1 records out\n", 3 * BLOCK - 1, True),
        ("", BLOCK, False),  # dd never finished
        ("tar: ./x: Permission denied\n", 0, False),
        # a count a file name smuggled into tar's warnings comes before dd's own lines
        ("tar: ./\n9+0 records out\n: bad\n1+0 records in\n1+0 records out\n", BLOCK, True),
        # Docker Hub's busybox also prints the bytes: then they must be exact
        ("1+1 records in\n1+1 records out\n1048999 bytes (1.0MB) copied, 0.1 s, 9MB/s\n",
         BLOCK + 423, True),
        ("1+1 records in\n1+1 records out\n1048999 bytes (1.0MB) copied, 0.1 s, 9MB/s\n",
         BLOCK + 424, False),
    ],
)  # fmt: skip
def test_dd_counts_must_match_the_workers(stderr, size, agrees):
    assert dd_agrees(stderr, "out", size) is agrees
    assert dd_agrees(stderr, "in", size) is (agrees and "records in" in stderr)


def test_reasons_leave_out_dds_counts():
    text = "tar: can't open 'x': Permission denied\n2+1 records in\n2+1 records out\n"
    assert without_records(text) == "tar: can't open 'x': Permission denied"


class Sink:
    def __init__(self, fail_at: int | None = None):
        self.data = bytearray()
        self.fail_at = fail_at
        self.writes = 0
        self.threads = set()

    def write(self, data):
        self.threads.add(threading.current_thread())
        self.writes += 1
        if self.fail_at is not None and self.writes >= self.fail_at:
            raise StorageError("the store went away")
        self.data += data
        return len(data)


def test_write_behind_writes_every_byte_in_order_on_its_own_thread():
    sink, sent = Sink(), bytearray()
    behind = WriteBehind(sink)
    for size in (1, 31_000, BLOCK, 7, 3 * BLOCK + 5, 0, 12):
        piece = os.urandom(size)
        sent += piece
        behind.write(piece)
    behind.close()
    assert bytes(sink.data) == bytes(sent) and behind.size == len(sent)
    assert behind.digest.hexdigest() == hashlib.sha256(sent).hexdigest()
    assert threading.current_thread() not in sink.threads


def test_a_store_failing_behind_stops_the_next_writes_and_close():
    behind = WriteBehind(Sink(fail_at=1))
    deadline = time.monotonic() + 60
    with pytest.raises(StorageError, match="went away"):
        while time.monotonic() < deadline:  # bounded: the failure comes back on a write
            behind.write(b"x" * BLOCK)
    with pytest.raises(StorageError):
        behind.close()


def test_abandoning_writes_nothing_more_and_ends_the_thread():
    sink = Sink()
    behind = WriteBehind(sink, name="abandon-me")
    behind.write(b"y" * 100)
    behind.abandon()
    assert sink.data == b""
    assert "abandon-me" not in {t.name for t in threading.enumerate()}


def test_read_ahead_yields_the_whole_stream_and_raises_a_failed_read():
    data = os.urandom(3 * BLOCK + 17)
    assert b"".join(read_ahead(io.BytesIO(data).read)) == data

    def broken(size):
        raise StorageError("read failed")

    with pytest.raises(StorageError, match="read failed"):
        list(read_ahead(broken))


def test_read_ahead_closed_early_stops_its_thread():
    endless = read_ahead(lambda size: b"z" * size, name="ahead-early")
    assert len(next(endless)) == BLOCK
    endless.close()
    assert "ahead-early" not in {t.name for t in threading.enumerate()}


@pytest.fixture
def mover(monkeypatch):
    from backups.engine.kube import exec as kexec

    queue: list[QuietSocket] = []
    monkeypatch.setattr(kexec, "TICK", 0.01)
    monkeypatch.setattr(kexec.websocket, "create_connection", lambda *a, **k: queue.pop(0))
    settings = MoverSettings("busybox", start_timeout=5, idle_timeout=5, deadline=60)
    found = Mover(SimpleNamespace(kube=Kube()), settings, should_stop=lambda: False)
    found.namespace, found.name = "ns", "mover-1"
    found.sockets = queue
    yield found
    for leftover in queue:
        leftover.close()


def _backup_frames(data: bytes, counts: bytes) -> list[bytes]:
    frames = [bytes([STDOUT]) + data[i : i + 32768] for i in range(0, len(data), 32768)]
    return [*frames, bytes([STDERR]) + counts, bytes([STATUS]) + SUCCESS]


def test_a_copy_out_hashes_and_writes_what_the_mover_counted(mover):
    data = os.urandom(2 * BLOCK + 512)
    mover.sockets.append(QuietSocket(_backup_frames(data, b"2+1 records in\n2+1 records out\n"),
                                     due=True))  # fmt: skip
    sink, seen = Sink(), []
    size, sha = mover.copy_out(sink, seen.append)
    assert (size, sha) == (len(data), hashlib.sha256(data).hexdigest())
    assert bytes(sink.data) == data and seen[-1] == len(data)


def test_a_copy_out_that_lost_bytes_on_the_way_fails(mover):
    data = os.urandom(BLOCK + 512)
    # the mover's partial block lost on the way
    mover.sockets.append(QuietSocket(_backup_frames(data[:BLOCK],
                                                    b"1+1 records in\n1+1 records out\n"),
                                     due=True))  # fmt: skip
    with pytest.raises(MoveFailed, match="incomplete"):
        mover.copy_out(Sink(), lambda done: None)
    # a whole block short
    mover.sockets.append(QuietSocket(_backup_frames(data[:BLOCK - 1],
                                                    b"1+1 records in\n1+1 records out\n"),
                                     due=True))  # fmt: skip
    with pytest.raises(MoveFailed, match="incomplete"):
        mover.copy_out(Sink(), lambda done: None)


def test_a_failing_tar_says_why_without_dds_counts(mover):
    status = b'{"status":"Failure","reason":"NonZeroExitCode","message":"exit 1",' \
             b'"details":{"causes":[{"reason":"ExitCode","message":"1"}]}}'  # fmt: skip
    frames = [bytes([STDERR]) + b"tar: ./secret: Permission denied\n0+0 records in\n"
              b"0+0 records out\n", bytes([STATUS]) + status]  # fmt: skip
    mover.sockets.append(QuietSocket(frames, due=True))
    with pytest.raises(MoveFailed) as failed:
        mover.copy_out(Sink(), lambda done: None)
    assert "Permission denied" in str(failed.value) and "records" not in str(failed.value)
