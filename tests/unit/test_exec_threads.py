"""Which thread runs what in an exec with stdin: the stdin iterator on the sender
thread, every callback (``on_wait``, ``should_stop``, and through them the job's
progress, which writes rows) on the calling thread. A restore from a copy once called
the job's progress from the sender thread: on SQLite "database table is locked", on
PostgreSQL a second connection nobody closed."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import websocket

from backups.engine.kube import exec as kexec
from backups.engine.kube.exec import CLOSE, STATUS, STDERR, STDIN, STDOUT, ExecError
from backups.engine.volumes.mover import READ_CHUNK, Mover, MoverSettings

SUCCESS = json.dumps({"status": "Success"}).encode()


class QuietSocket:
    """A websocket whose server writes nothing until stdin is closed (as ``tar -x``),
    then its scripted frames. ``sock`` is a real socket, so the reader can wait on it;
    it turns readable once the frames are due."""

    def __init__(self, frames, *, due=False):
        self.sock, self._peer = socket.socketpair()
        self.frames = list(frames)
        self.sent = 0
        if due:
            self._peer.send(b"!")

    def send_bytes(self, data: bytes):
        if data == bytes([CLOSE, STDIN]):
            self._peer.send(b"!")
        else:
            self.sent += len(data) - 1

    def recv_data(self, control_frame=False):
        if not self.frames:
            raise websocket.WebSocketConnectionClosedException("closed")
        return websocket.ABNF.OPCODE_BINARY, self.frames.pop(0)

    def close(self):
        self.sock.close()
        self._peer.close()


class Kube:
    class Config:
        host, verify_ssl, ssl_ca_cert, cert_file, key_file = "https://h:1", True, None, None, None
        api_key, api_key_prefix = {"authorization": "Bearer t"}, {}

    api = SimpleNamespace(configuration=Config())


@pytest.fixture
def sockets(monkeypatch):
    """The sockets the next execs connect to, in order."""
    queue: list[QuietSocket] = []
    monkeypatch.setattr(kexec, "TICK", 0.01)
    monkeypatch.setattr(kexec.websocket, "create_connection", lambda *a, **k: queue.pop(0))
    yield queue
    for leftover in queue:
        leftover.close()


def test_on_wait_runs_on_the_calling_thread_and_sending_keeps_a_silent_stream_alive(sockets):
    sockets.append(QuietSocket([bytes([STATUS]) + SUCCESS]))
    senders, waits = set(), set()

    def slow_stdin():
        for _ in range(8):  # 0.8 s of input against a 0.5 s timeout: it must not trip
            senders.add(threading.current_thread())
            time.sleep(0.1)
            yield b"x" * 1000

    result = kexec.exec_command(
        Kube(), "ns", "p", "c", ["tar", "-x"], stdin=slow_stdin(), timeout=0.5,
        on_wait=lambda: waits.add(threading.current_thread()),
    )  # fmt: skip
    assert result.ok
    assert waits == {threading.current_thread()}
    assert senders and threading.current_thread() not in senders


def test_a_stream_with_nothing_read_or_sent_still_stops_answering(sockets):
    sockets.append(QuietSocket([]))
    asked = []
    with pytest.raises(ExecError, match="stopped answering"):
        kexec.exec_command(
            Kube(), "ns", "p", "c", ["sleep", "9"], timeout=0.2,
            should_stop=lambda: asked.append(threading.current_thread()) or False,
        )  # fmt: skip
    assert set(asked) == {threading.current_thread()}


class SlowCopy(io.BytesIO):
    """A stored copy whose later reads wait (bounded) until some progress was reported:
    the job must hear of a copy while it is still under way."""

    def __init__(self, data: bytes, reported: threading.Event):
        super().__init__(data)
        self.reported = reported

    def read(self, size=-1):
        if self.tell() >= READ_CHUNK:
            self.reported.wait(5)
        return super().read(size)


def test_a_restore_from_a_copy_reports_progress_only_on_the_jobs_thread(sockets):
    data = bytes(range(256)) * (3 * READ_CHUNK // 256)
    sha = hashlib.sha256(data).hexdigest()
    counts = bytes([STDERR]) + b"3+0 records in\n3+0 records out\n"  # the mover's dd
    sockets.append(QuietSocket([counts, bytes([STATUS]) + SUCCESS]))  # the tar -x
    settings = MoverSettings("busybox", start_timeout=5, idle_timeout=5, deadline=60)
    mover = Mover(SimpleNamespace(kube=Kube()), settings, should_stop=lambda: False)
    mover.namespace, mover.name = "ns", "mover-1"
    reported, calls = threading.Event(), []

    def progress(done: int) -> None:
        calls.append((threading.current_thread(), done))
        reported.set()

    assert mover.copy_in(SlowCopy(data, reported), sha, progress) == len(data)
    assert {thread for thread, _ in calls} == {threading.current_thread()}
    done = [n for _, n in calls]
    assert done == sorted(done) and done[-1] == len(data)
    assert any(0 < n < len(data) for n in done), "no progress while the copy was under way"


def test_stdout_that_trails_the_status_is_still_read(sockets):
    frames = [bytes([STDOUT]) + b"head-", bytes([STATUS]) + SUCCESS, bytes([STDOUT]) + b"tail"]
    sockets.append(QuietSocket(frames, due=True))
    out = bytearray()
    result = kexec.exec_command(Kube(), "ns", "p", "c", ["tar", "-c"], on_stdout=out.extend)
    assert result.ok and bytes(out) == b"head-tail"


class OneAtATime(QuietSocket):
    """A TLS connection must not read and write at once: records whether it ever did.
    Its stdout frames are due from the start, so the reader reads while stdin goes out."""

    def __init__(self, frames):
        super().__init__(frames, due=True)
        self.inside = 0
        self.overlapped = False

    def _enter(self):
        self.inside += 1
        self.overlapped |= self.inside > 1
        time.sleep(0.002)
        self.inside -= 1

    def send_bytes(self, data: bytes):
        self._enter()
        super().send_bytes(data)

    def recv_data(self, control_frame=False):
        self._enter()
        return super().recv_data(control_frame)


def test_reading_and_sending_never_use_the_connection_at_once(sockets):
    frames = [bytes([STDOUT]) + b"x"] * 200 + [bytes([STATUS]) + SUCCESS]
    fake = OneAtATime(frames)
    sockets.append(fake)
    result = kexec.exec_command(
        Kube(), "ns", "p", "c", ["cat"], stdin=(b"y" * 1000 for _ in range(200)), timeout=5
    )
    assert result.ok and fake.sent == 200 * 1000
    assert not fake.overlapped
