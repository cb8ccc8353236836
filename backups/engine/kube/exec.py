"""Running a command in a pod's container over the API server's exec websocket.

The ``kubernetes`` client's ``stream`` helper decodes what it reads as text and, on a
busy stream, dropped bytes of binary output: a tar stream came out short. So the frames
are read here. The protocol is ``v5.channel.k8s.io`` (Kubernetes 1.30 and later): every
binary frame starts with one byte naming its channel (0 stdin, 1 stdout, 2 stderr, 3 the
command's final ``Status`` as JSON, 255 "close" with the channel to close in the next
byte), so that the sender can close stdin and still read the exit status.

``ChannelReader`` is the pure part (frames in, bytes and status out; unit-tested);
``exec_command`` opens the websocket with the client's own credentials, feeds stdin from
an iterator on a second thread while the calling thread reads, and returns an
``ExecResult``. Every callback it is given (``on_stdout``, ``on_wait``, ``should_stop``)
runs on the calling thread, the job's: only the stdin iterator runs on the second one,
so it must not call back into the job (its database connection belongs to the job's
thread). ``on_wait`` is how a caller reports what that iterator counted: it is called
at least every ``TICK`` seconds while no frame arrives (``tar -x`` writes nothing).
The two threads share one TLS connection, and OpenSSL does not allow one connection to
read and write at the same time from two threads (a fast restore broke with "[SSL:
BAD_LENGTH]"): an ``_IoLock`` lets one of them at a time into the socket; the sender
waits for the socket to be writable before it takes the lock. When sending breaks because the command ended (it stopped reading its
input, or exited), the result still carries the command's exit status and stderr; a
stream that closes without any status is an ``ExecError``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import websocket

STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
PROTOCOL = "v5.channel.k8s.io"
STDERR_KEPT = 16 * 1024  # the tail of stderr kept for the reason shown to people
TICK = 0.5  # seconds between the calling thread's looks while the stream is silent
DRAIN = 5.0  # seconds to wait for the close once the status came (stdout may trail it)
SEND_FRAME = 256 * 1024  # stdin bytes a frame: the socket is the sender's for that long


class ExecError(Exception):
    """The exec could not run, or ended without saying how; ``str()`` says why."""


@dataclass
class ExecResult:
    exit_code: int  # 0 on success
    stderr: str  # the tail of what the command wrote to stderr
    message: str = ""  # the API server's message for a failure that is not an exit code
    send_error: str = ""  # why sending stdin stopped early ("" when it all went)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.send_error

    def describe(self) -> str:
        """One sentence: the exit status and the end of stderr."""
        text = f"exit status {self.exit_code}"
        if self.message and self.exit_code == -1:
            text = self.message
        tail = self.stderr.strip().splitlines()[-3:]
        if tail:
            text += ": " + " / ".join(tail)
        if self.send_error:
            text += f" (it stopped reading its input: {self.send_error})"
        return text


def parse_status(data: bytes) -> tuple[int, str]:
    """(exit code, message) from the status channel's JSON ``Status``.

    Success is 0; a non-zero exit is ``reason: NonZeroExitCode`` with the code in
    ``details.causes[reason=ExitCode].message``; any other failure (the container
    is gone, the command was not found) is -1 with the server's message."""
    try:
        doc = json.loads(data)
    except ValueError:
        return -1, f"unreadable exec status {data[:80]!r}"
    if not isinstance(doc, dict):
        return -1, "unreadable exec status"
    if doc.get("status") == "Success":
        return 0, ""
    message = str(doc.get("message") or "")
    if doc.get("reason") == "NonZeroExitCode":
        for cause in (doc.get("details") or {}).get("causes") or []:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", "")), message
                except ValueError:
                    break
    return -1, message or "the command failed without an exit status"


@dataclass
class ChannelReader:
    """Demultiplexes the frames of one exec: stdout goes to ``on_stdout`` (in order,
    every byte), stderr is kept (its tail), the status channel ends the command."""

    on_stdout: Callable[[bytes], None]
    stderr: bytearray = field(default_factory=bytearray)
    status: tuple[int, str] | None = None
    stdout_bytes: int = 0

    def feed(self, frame: bytes) -> None:
        if not frame:
            return
        channel, payload = frame[0], frame[1:]
        if channel == STDOUT:
            if payload:
                self.stdout_bytes += len(payload)
                self.on_stdout(payload)
        elif channel == STDERR:
            self.stderr += payload
            if len(self.stderr) > 2 * STDERR_KEPT:
                del self.stderr[:-STDERR_KEPT]
        elif channel == STATUS:
            self.status = parse_status(payload)
        # STDIN echoes and CLOSE frames from the server carry nothing for us

    def stderr_text(self) -> str:
        return bytes(self.stderr[-STDERR_KEPT:]).decode("utf-8", "replace")

    def result(self, send_error: str = "") -> ExecResult:
        if self.status is None:
            raise ExecError(
                "The exec stream closed without the command's exit status"
                + (f" ({send_error})" if send_error else "")
                + (f" (stderr: {self.stderr_text().strip()[-300:]})" if self.stderr else "")
                + "."
            )
        code, message = self.status
        return ExecResult(code, self.stderr_text(), message, send_error)


def refusal(exc) -> str:
    """The status and the server's own message of a refused websocket handshake
    (websocket-client's text carries every response header too)."""
    code = getattr(exc, "status_code", None)
    body = getattr(exc, "resp_body", None) or b""
    message = ""
    try:
        doc = json.loads(body)
    except (ValueError, TypeError):
        doc = None
    if isinstance(doc, dict):
        message = str(doc.get("message") or "")
    elif isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        message = " ".join(text.split())[:300]
    status = f"{code} {getattr(exc, 'status_message', '') or ''}".strip() if code else ""
    if not status:
        return str(exc).split(" -+-+- ")[0]
    return f"{status}: {message}" if message else status


def exec_url(server: str, namespace: str, pod: str, container: str, command, stdin: bool) -> str:
    parts = urlsplit(server)
    scheme = "wss" if parts.scheme == "https" else "ws"
    base = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    query = [f"container={quote(container)}", "stdout=true", "stderr=true"]
    if stdin:
        query.append("stdin=true")
    query += [f"command={quote(arg, safe='')}" for arg in command]
    return f"{base}/api/v1/namespaces/{namespace}/pods/{pod}/exec?" + "&".join(query)


def _connect_options(configuration) -> tuple[dict, list[str]]:
    """TLS options and headers from a ``kubernetes`` client Configuration."""
    sslopt: dict = {"cert_reqs": ssl.CERT_REQUIRED if configuration.verify_ssl else ssl.CERT_NONE}
    if configuration.ssl_ca_cert:
        sslopt["ca_certs"] = configuration.ssl_ca_cert
    if configuration.cert_file:
        sslopt["certfile"] = configuration.cert_file
    if configuration.key_file:
        sslopt["keyfile"] = configuration.key_file
    if not configuration.verify_ssl:
        sslopt["check_hostname"] = False
    if getattr(configuration, "tls_server_name", None):
        sslopt["server_hostname"] = configuration.tls_server_name
    headers = []
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
        "BearerToken"
    )
    if token:
        prefix = (configuration.api_key_prefix or {}).get("authorization", "")
        headers.append(f"Authorization: {(prefix + ' ' + token).strip()}")
    return sslopt, headers


@functools.lru_cache(maxsize=4)
def _mask_units(length: int) -> tuple[int, int]:
    """(1 at every 4th byte, all ones) as little-endian integers of ``length`` bytes:
    a key times the first is the key repeated over the payload."""
    units = int.from_bytes(b"\x01\x00\x00\x00" * ((length + 3) // 4), "little")
    return units, (1 << (8 * length)) - 1


def mask(key: bytes, data) -> bytes:
    """``data`` XORed with the 4-byte ``key`` repeated (RFC 6455, 5.3), as three big
    integer operations: websocket-client's own masking costs 6 ms a MiB, half of a
    restore's time on the worker."""
    length = len(data)
    if not length:
        return b""
    units, ones = _mask_units(length)
    value = int.from_bytes(data, "little") ^ (int.from_bytes(key, "little") * units)
    return (value & ones).to_bytes(length, "little")


class _Frame(websocket.ABNF):
    def _get_masked(self, mask_key) -> bytes:
        key = mask_key.encode("latin-1") if isinstance(mask_key, str) else bytes(mask_key)
        return key + mask(key, self.data)


class _WebSocket(websocket.WebSocket):
    """websocket-client's socket with the faster masking of what it sends."""

    def send(self, payload, opcode=websocket.ABNF.OPCODE_TEXT) -> int:
        if isinstance(payload, str):
            payload = payload.encode()
        return self.send_frame(_Frame(fin=1, opcode=opcode, data=payload))


class _Activity:
    """When the stream last moved: a frame read, or a stdin chunk sent (the sender
    thread writes it, the reader reads it; one float, so no lock)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.send_failed = False  # the server stopped taking stdin (the command ended)

    def touch(self) -> None:
        self.last = time.monotonic()

    def idle(self) -> float:
        return time.monotonic() - self.last


def exec_command(
    kube,
    namespace: str,
    pod: str,
    container: str,
    command: list[str],
    *,
    stdin: Iterable[bytes] | None = None,
    on_stdout: Callable[[bytes], None] = lambda data: None,
    on_wait: Callable[[], None] = lambda: None,
    timeout: float = 30.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> ExecResult:
    """Run ``command`` in ``pod``'s ``container``; every stdout byte goes to ``on_stdout``.

    ``timeout`` bounds how long the stream may stay still (no frame read and no stdin
    sent), not the whole command. ``stdin`` is sent chunk by chunk from a second thread,
    then closed. ``should_stop`` and ``on_wait`` are asked on this thread between frames
    and at least every ``TICK`` seconds: when ``should_stop`` says yes the stream is
    closed and ``ExecError`` raised."""
    configuration = kube.api.configuration
    url = exec_url(configuration.host, namespace, pod, container, command, stdin is not None)
    sslopt, headers = _connect_options(configuration)
    reader = ChannelReader(on_stdout)
    try:
        ws = websocket.create_connection(
            url, header=headers, sslopt=sslopt, subprotocols=[PROTOCOL], timeout=timeout,
            class_=_WebSocket,
        )  # fmt: skip
    except websocket.WebSocketBadStatusException as exc:
        raise ExecError(
            f"The API server refused the exec into {namespace}/{pod}: {refusal(exc)}."
        ) from None
    except (OSError, websocket.WebSocketException) as exc:
        raise ExecError(f"The exec into {namespace}/{pod} could not connect: {exc}") from None
    activity = _Activity()
    send_error: list[str] = []
    sender = None
    lock = threading.Lock()
    if stdin is not None:
        sender = threading.Thread(
            target=_send_all,
            args=(ws, stdin, send_error, activity, lock),
            name=f"exec-stdin-{pod}",
            daemon=True,
        )
        sender.start()
    try:
        _read_all(ws, reader, should_stop, on_wait, activity, timeout, f"{namespace}/{pod}", lock)
    finally:
        if sender is not None:
            sender.join(timeout=timeout)
        ws.close()
    return reader.result(send_error[0] if send_error else "")


def _ready(ws, wait: float, lock: threading.Lock, *, write: bool = False) -> bool:
    """Whether a frame's first bytes are there to read (or, ``write``, whether the
    socket takes more), waiting up to ``wait``. A socket this cannot look into counts
    as ready: ``recv_data`` then blocks as before."""
    sock = getattr(ws, "sock", None)
    if sock is None:
        return True
    pending = getattr(sock, "pending", None)  # TLS keeps decrypted bytes select cannot see
    if not write and pending is not None:
        with lock:
            if pending():
                return True
    try:
        ready = select.select([], [sock], [], wait)[1] if write else select.select(
            [sock], [], [], wait)[0]  # fmt: skip
    except (OSError, ValueError):  # closed under us: let recv_data say so
        return True
    return bool(ready)


def _read_all(ws, reader, should_stop, on_wait, activity, timeout, where, lock) -> None:
    """Read until the server closes the stream. The status can arrive before the last
    stdout frames (the API server copies each channel on its own): once it is there,
    reading goes on until the close, or until ``DRAIN`` seconds pass without a frame."""
    while True:
        if reader.status is None and should_stop():
            raise ExecError(f"The exec into {where} was stopped.")
        if not _ready(ws, min(TICK, timeout), lock):
            on_wait()
            if reader.status is not None and activity.idle() >= min(DRAIN, timeout):
                return
            if activity.idle() >= timeout:
                raise ExecError(f"The exec into {where} stopped answering.")
            continue
        try:
            with lock:
                opcode, data = ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            if reader.status is not None:
                return
            raise ExecError(f"The exec into {where} stopped answering.") from None
        except websocket.WebSocketConnectionClosedException:
            return
        except OSError as exc:
            if activity.send_failed:  # TLS after a write the closing server cut short
                return
            raise ExecError(f"The exec stream of {where} broke: {exc}") from None
        activity.touch()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return
        if opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
            reader.feed(data if isinstance(data, bytes) else data.encode())
        on_wait()


def _send_all(ws, chunks: Iterable[bytes], errors: list[str], activity: _Activity, lock) -> None:
    """Send stdin, then close it (channel 255). A send that breaks (the command ended
    and the server closed the stream) is recorded, not raised: the reader then
    reports the command's own status. Runs on its own thread: nothing here calls back
    into the caller except the ``chunks`` iterator, which must not either."""

    def send(data: bytes) -> None:
        while not _ready(ws, TICK, lock, write=True):
            pass  # bounded by the reader: it closes the stream after its timeout
        with lock:
            ws.send_bytes(data)
        activity.touch()

    try:
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), SEND_FRAME):
                send(bytes([STDIN]) + view[start : start + SEND_FRAME])
        send(bytes([CLOSE, STDIN]))
    except (websocket.WebSocketException, OSError) as exc:
        errors.append(f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__)
        activity.send_failed = True
    except Exception as exc:  # the input itself failed (a store read): stop the command
        errors.append(f"reading the input failed: {exc}")
        with contextlib.suppress(Exception):  # already failing; the reader reports it
            ws.close()
