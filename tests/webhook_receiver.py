"""A real HTTP receiver for webhook tests: it records every request and answers
the status codes it is given, in order (the last one repeats)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    url: str
    codes: list[int]
    requests: list[Received] = field(default_factory=list)
    redirect_to: str = ""

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first ``count`` requests, waiting for them a bounded time."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, f"{len(self.requests)} of {count} requests arrived"
        return self.requests[:count]


def signature_ok(secret: str, request: Received) -> bool:
    timestamp = request.headers["X-Palette-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(
        request.headers["X-Palette-Signature"], "sha256=" + expected.hexdigest()
    )


@contextmanager
def receiver(*codes: int):
    state = Receiver(url="", codes=list(codes) or [200])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(Received(self.path, dict(self.headers), body))
            index = min(len(state.requests), len(state.codes)) - 1
            code = state.codes[index]
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", state.redirect_to or "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/palette"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
