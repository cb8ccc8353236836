"""restic's REST protocol, served on 127.0.0.1 for one job, over a location's Provider.

restic reaches the location only through this server (``benchmarks/DEDUP.md``): so the
console's roots policy, egress policy, sealed locations and error wording all apply to
what restic reads and writes. The server listens on a random port of 127.0.0.1 and
answers only requests that carry its random basic-auth token (401 otherwise); every
path must name a repository of the server (a namespace: ``<root>/<namespace>/`` in the
location) and one of restic's own objects in it (400 otherwise), so nothing reaching
the port can name a key outside the repositories.

Requests and what they become (restic's REST protocol, version 2):

- ``POST /<repo>/?create=true``: nothing (keys are paths).
- ``HEAD``/``GET``/``POST /<repo>/config``: ``exists``+size / read / write of ``config``.
- ``GET /<repo>/<type>/``: ``list``, as ``[{"name", "size"}]`` (v2) or names (v1).
- ``HEAD``/``GET``/``POST``/``DELETE /<repo>/<type>/<name>``: size, (ranged) read via
  ``read_range``, streamed write (never held whole; a data, index, snapshot or key
  object whose sha256 differs from its name is refused), delete. ``data`` objects live
  under ``data/<two hex digits>/<name>`` as in restic's own layout.

A failure of the store (a ``StorageError`` other than NotFound) answers 500 and is kept
as ``failure``: the runner stops restic at once with that reason, rather than letting
restic retry for minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from backups.engine.storage.base import NotFound, StorageError

TYPES = ("data", "keys", "locks", "snapshots", "index")
REPO = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"  # a namespace's name
OBJECT = re.compile(rf"^/(?P<repo>{REPO})/(?:(?P<config>config)|(?P<type>{'|'.join(TYPES)})/"
                    r"(?P<name>[0-9a-f]{64}))$")  # fmt: skip
LISTING = re.compile(rf"^/(?P<repo>{REPO})/(?P<type>{'|'.join(TYPES)})/$")
ROOT = re.compile(rf"^/(?P<repo>{REPO})/$")
PIECE = 1024 * 1024  # bytes per read or write while streaming
V2 = "application/vnd.x.restic.rest.v2"
USER = "palette"


def object_key(root: str, repo: str, kind: str, name: str) -> str:
    """The location's key of one restic object (``kind`` "config" has no name)."""
    if kind == "config":
        return f"{root}/{repo}/config"
    if kind == "data":
        return f"{root}/{repo}/data/{name[:2]}/{name}"
    return f"{root}/{repo}/{kind}/{name}"


class ResticServer:
    """The REST server of one job; ``url(repo)`` is what restic is given (in its
    environment: it holds the token). Use as a context manager, or ``close()``."""

    def __init__(self, provider, root: str):
        self.provider = provider
        self.root = root.strip("/")
        self.token = secrets.token_urlsafe(32)
        self.failure: StorageError | None = None
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="restic-rest", daemon=True
        )
        self._thread.start()

    def url(self, repo: str) -> str:
        return f"rest:http://{USER}:{self.token}@127.0.0.1:{self.port}/{repo}/"

    def fail(self, exc: StorageError) -> None:
        with self._lock:
            self.failure = self.failure or exc

    def reset(self) -> None:
        """Forget the last failure (a new restic command starts)."""
        with self._lock:
            self.failure = None

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> ResticServer:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # What the handler asks of the location ----------------------------------------

    def size(self, key: str) -> int | None:
        for info in self.provider.list(key):
            if info.key == key:
                return self._plain(info.size)
        return None

    def listing(self, repo: str, kind: str) -> list[tuple[str, int]]:
        prefix = f"{self.root}/{repo}/{kind}/"
        found = []
        for info in self.provider.list(prefix):
            name = info.key.rsplit("/", 1)[-1]
            if re.fullmatch(r"[0-9a-f]{64}", name) and info.key == object_key(
                self.root, repo, kind, name
            ):
                found.append((name, self._plain(info.size)))
        return found

    def _plain(self, size: int) -> int:
        """The size restic wrote (a sealed location stores a little more)."""
        plain = getattr(self.provider, "plain_size", None)
        return plain(size) if plain else size


def _handler(server: ResticServer):
    class Handler(_Handler):
        owner = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: ResticServer
    protocol_version = "HTTP/1.1"
    server_version = "palette-restic"
    sys_version = ""

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        """Quiet: a request line holds nothing worth a log, and the log is not restic's."""

    # Answers ----------------------------------------------------------------------

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain",
                headers: dict | None = None, length: int | None = None) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, status: int, text: str) -> None:
        self._drain()
        self.close_connection = True
        self._answer(status, text.encode() + b"\n")

    def _drain(self) -> None:
        """Read (and drop) a request body we will not use, so the client sees our answer."""
        left = self._length() or 0
        while left > 0:
            piece = self.rfile.read(min(left, PIECE))
            if not piece:
                return
            left -= len(piece)

    def _length(self) -> int | None:
        try:
            value = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        return value if value >= 0 else None

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{USER}:{self.owner.token}".encode()).decode()
        return hmac.compare_digest(given.encode(), expected.encode())

    def _store_failed(self, exc: StorageError) -> None:
        self.owner.fail(exc)
        self.close_connection = True
        self._answer(500, b"the location failed\n")

    # Dispatch ---------------------------------------------------------------------

    def _route(self):
        """(kind, match) for this request's path, or None after answering 400/401."""
        if not self._authorised():
            self._refuse(401, "unauthorised")
            return None
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        if "%" in path or "//" in path:
            self._refuse(400, "bad path")
            return None
        for kind, pattern in (("object", OBJECT), ("listing", LISTING), ("root", ROOT)):
            match = pattern.match(path)
            if (
                match
                and (kind == "root") == (query == "create=true")
                and (kind == "root" or not query)
            ):
                return kind, match
        self._refuse(400, "bad path")
        return None

    def _key(self, match) -> tuple[str, str]:
        kind = "config" if match["config"] else match["type"]
        return kind, object_key(self.owner.root, match["repo"], kind, match["name"] or "")

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            return
        kind, match = route
        if kind == "root":
            self._drain()
            self._answer(200)
        elif kind == "object":
            self._save(*self._key(match), match["name"])
        else:
            self._refuse(400, "bad path")

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        route = self._route()
        if route is None:
            return
        kind, match = route
        try:
            if kind == "listing" and not head:
                return self._list(match["repo"], match["type"])
            if kind != "object":
                return self._refuse(400, "bad path")
            _, key = self._key(match)
            size = self.owner.size(key)
            if size is None:
                return self._answer(404, b"not found\n")
            if head:
                return self._answer(200, length=size, content_type="application/octet-stream")
            self._load(key, size)
        except NotFound:
            self._answer(404, b"not found\n")
        except StorageError as exc:
            self._store_failed(exc)

    def do_DELETE(self) -> None:
        route = self._route()
        if route is None:
            return
        kind, match = route
        if kind != "object":
            return self._refuse(400, "bad path")
        try:
            self.owner.provider.delete(self._key(match)[1])
        except StorageError as exc:
            return self._store_failed(exc)
        self._answer(200)

    # The work ---------------------------------------------------------------------

    def _list(self, repo: str, kind: str) -> None:
        found = self.owner.listing(repo, kind)
        if V2 in self.headers.get("Accept", ""):
            body = [{"name": name, "size": size} for name, size in found]
            return self._answer(200, json.dumps(body).encode(), V2)
        return self._answer(200, json.dumps([n for n, _ in found]).encode(), "application/json")

    def _load(self, key: str, size: int) -> None:
        start, end = 0, size - 1
        ranged = self.headers.get("Range")
        if ranged:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", ranged.strip())
            if not match:
                return self._refuse(416, "bad range")
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
            if start > end:
                return self._answer(416, headers={"Content-Range": f"bytes */{size}"})
        length = end - start + 1
        headers = {"Accept-Ranges": "bytes"}
        if ranged:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        # Pieces of the object, one ranged read each: memory stays at one piece.
        done = 0
        while done < length:
            piece = self.owner.provider.read_range(key, start + done, min(PIECE, length - done))
            if not piece:
                self.close_connection = True  # the object is shorter than it was: restic retries
                return
            self.wfile.write(piece)
            done += len(piece)

    def _save(self, kind: str, key: str, name: str | None) -> None:
        length = self._length()
        if length is None:
            return self._refuse(411, "a length is required")
        digest = hashlib.sha256()
        try:
            if kind == "config" and self.owner.provider.exists(key):
                raise _Refused(403, "the repository exists already")  # two inits at once
            with self.owner.provider.open_write(key) as writer:
                left = length
                while left > 0:
                    piece = self.rfile.read(min(left, PIECE))
                    if not piece:
                        raise _Refused(400, "the body ended early")
                    digest.update(piece)
                    writer.write(piece)
                    left -= len(piece)
                if kind != "config" and digest.hexdigest() != name:
                    raise _Refused(400, "the body's sha256 is not its name")
        except _Refused as refused:
            self.close_connection = True
            return self._answer(refused.status, refused.text.encode() + b"\n")
        except StorageError as exc:
            return self._store_failed(exc)
        self._answer(200)


class _Refused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text
