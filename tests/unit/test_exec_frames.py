"""The exec stream reader: every stdout byte in order, stderr kept, the status parsed, and
a send that breaks because the command ended reports the command's own status."""

from __future__ import annotations

import json
import threading

import pytest
import websocket

from backups.engine.kube import exec as kexec
from backups.engine.kube.exec import (
    CLOSE,
    STATUS,
    STDERR,
    STDIN,
    STDOUT,
    ChannelReader,
    ExecError,
    exec_url,
    parse_status,
)

SUCCESS = json.dumps({"status": "Success"}).encode()


def exit_status(code: int) -> bytes:
    return json.dumps(
        {
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    ).encode()


def test_it_passes_every_stdout_byte_in_order_whatever_the_frame_sizes():
    out = bytearray()
    reader = ChannelReader(out.extend)
    payload = bytes(range(256)) * 4096  # every byte value, 1 MiB
    for start, size in ((0, 1), (1, 7), (8, 65536), (65544, len(payload))):
        reader.feed(bytes([STDOUT]) + payload[start : start + size])
    reader.feed(bytes([STATUS]) + SUCCESS)
    assert bytes(out) == payload
    assert reader.stdout_bytes == len(payload)
    assert reader.result().ok


def test_it_keeps_stderr_apart_and_only_its_tail():
    reader = ChannelReader(lambda data: None)
    reader.feed(bytes([STDERR]) + b"x" * (3 * kexec.STDERR_KEPT))
    reader.feed(bytes([STDERR]) + b"tar: short read\n")
    reader.feed(bytes([STATUS]) + exit_status(2))
    result = reader.result()
    assert result.exit_code == 2 and not result.ok
    assert result.stderr.endswith("tar: short read\n")
    assert len(result.stderr) <= kexec.STDERR_KEPT
    assert "exit status 2: " in result.describe() and "tar: short read" in result.describe()


def test_it_ignores_empty_frames_and_server_close_frames():
    out = bytearray()
    reader = ChannelReader(out.extend)
    reader.feed(b"")
    reader.feed(bytes([STDOUT]))
    reader.feed(bytes([CLOSE, STDIN]))
    reader.feed(bytes([STDIN]) + b"echo")
    assert out == b"" and reader.status is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (SUCCESS, 0),
        (exit_status(137), 137),
        (json.dumps({"status": "Failure", "message": "container not found"}).encode(), -1),
        (b"not json", -1),
        (b"[]", -1),
        (
            json.dumps(
                {"status": "Failure", "reason": "NonZeroExitCode",
                 "details": {"causes": [{"reason": "ExitCode", "message": "x"}]}}
            ).encode(),
            -1,
        ),
    ],
)  # fmt: skip
def test_it_reads_the_status_channel(body, code):
    assert parse_status(body)[0] == code


def test_a_stream_without_a_status_is_a_clean_error():
    reader = ChannelReader(lambda data: None)
    reader.feed(bytes([STDERR]) + b"oops")
    with pytest.raises(ExecError, match="without the command's exit status.*oops"):
        reader.result()


def test_the_url_carries_each_argument_encoded():
    url = exec_url("https://127.0.0.1:6443", "ns", "p", "c", ["sh", "-c", "a && b=1"], True)
    assert url.startswith("wss://127.0.0.1:6443/api/v1/namespaces/ns/pods/p/exec?")
    assert "stdin=true" in url and "command=a%20%26%26%20b%3D1" in url
    assert exec_url("http://h:1/base/", "n", "p", "c", ["ls"], False).startswith("ws://h:1/base/")


class FakeSocket:
    """A websocket whose server side is scripted: frames to read, and a send that
    breaks after ``accept`` bytes of stdin (the command exited)."""

    def __init__(self, frames, accept=None):
        self.frames = list(frames)
        self.accept = accept
        self.sent = bytearray()
        self.closed_stdin = False
        self.ready = threading.Event()

    def send_bytes(self, data: bytes):
        if data == bytes([CLOSE, STDIN]):
            self.closed_stdin = True
            self.ready.set()
            return
        if self.accept is not None and len(self.sent) >= self.accept:
            self.ready.set()
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        self.sent += data[1:]

    def recv_data(self, control_frame=False):
        self.ready.wait(5)
        if not self.frames:
            raise websocket.WebSocketConnectionClosedException("closed")
        return websocket.ABNF.OPCODE_BINARY, self.frames.pop(0)

    def close(self):
        self.ready.set()


def _run(monkeypatch, fake, stdin):
    monkeypatch.setattr(kexec.websocket, "create_connection", lambda *a, **k: fake)

    class Config:
        host, verify_ssl, ssl_ca_cert, cert_file, key_file = "https://h:1", True, None, None, None
        api_key, api_key_prefix = {"authorization": "Bearer t"}, {}

    class Kube:
        api = type("Api", (), {"configuration": Config()})()

    return kexec.exec_command(Kube(), "ns", "p", "c", ["tar", "-x"], stdin=stdin, timeout=5)


def test_it_sends_all_of_stdin_then_closes_it(monkeypatch):
    fake = FakeSocket([bytes([STATUS]) + SUCCESS])
    chunks = [b"a" * 10, b"b" * (3 << 20)]
    result = _run(monkeypatch, fake, iter(chunks))
    assert result.ok and fake.closed_stdin
    assert bytes(fake.sent) == b"".join(chunks)


def test_a_send_broken_by_the_command_ending_reports_its_status_and_stderr(monkeypatch):
    frames = [bytes([STDERR]) + b"tar: invalid tar magic\n", bytes([STATUS]) + exit_status(1)]
    fake = FakeSocket(frames, accept=1 << 20)
    result = _run(monkeypatch, fake, iter([b"z" * (1 << 20)] * 5))
    assert result.exit_code == 1
    assert "invalid tar magic" in result.describe()
    assert "stopped reading its input" in result.describe()
    assert "WebSocketConnectionClosedException" in result.send_error


def test_a_failing_input_stops_the_command_with_the_reason(monkeypatch):
    def chunks():
        yield b"x"
        raise OSError("the store went away")

    fake = FakeSocket([])
    with pytest.raises(ExecError, match="the store went away"):
        _run(monkeypatch, fake, chunks())
