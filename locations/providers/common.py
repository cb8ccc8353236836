"""Pieces every object-store provider shares: the CA bundle file, a streaming
reader over a store's chunks, a writer that uploads one part at a time, the
translation of SDK failures, and the object-lock settings of S3-style stores."""

from __future__ import annotations

import abc
import base64
import contextlib
import hashlib
import io
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator

from backups.engine.storage.base import PART_SIZE, StorageError, Writer
from locations.providers.errors import Misconfigured

READ_BUFFER = 256 * 1024


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class CAFile:
    """A location's custom CA bundle (PEM text) as a private temporary file, since
    every SDK wants a path. ``path`` is None without a bundle; ``close()`` (or
    garbage collection) removes the file."""

    def __init__(self, pem: str):
        self.path: str | None = None
        pem = (pem or "").strip()
        if not pem:
            return
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(pem.encode())
        except ValueError:
            raise Misconfigured(
                "The custom CA bundle is not valid: paste one or more PEM certificates "
                "(-----BEGIN CERTIFICATE-----)"
            ) from None
        fd, self.path = tempfile.mkstemp(prefix="palette-ca-", suffix=".pem")  # 0600
        with os.fdopen(fd, "w") as handle:
            handle.write(pem + "\n")
        self._finalizer = weakref.finalize(self, _unlink, self.path)

    @property
    def verify(self) -> str | bool:
        """What requests/boto3/azure take: the bundle's path, or True for the system CAs."""
        return self.path or True

    def close(self) -> None:
        if self.path:
            self._finalizer()


class ChunkReader(io.RawIOBase):
    """A raw, readable file object over an iterator of byte chunks.

    ``translate`` turns an SDK exception raised mid-stream into a StorageError;
    ``on_close`` releases the connection.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        on_close: Callable[[], None] | None = None,
        translate: Callable[[Exception], StorageError] | None = None,
    ):
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._on_close = on_close
        self._translate = translate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            except StorageError:
                raise
            except Exception as exc:
                if self._translate is None:
                    raise
                raise self._translate(exc) from None
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            try:
                if self._on_close is not None:
                    self._on_close()
            finally:
                self._pending = memoryview(b"")
                super().close()


def stream(
    chunks: Iterator[bytes],
    on_close: Callable[[], None] | None = None,
    translate: Callable[[Exception], StorageError] | None = None,
) -> io.BufferedReader:
    """The buffered, streaming file object ``Provider.open_read`` returns."""
    return io.BufferedReader(ChunkReader(chunks, on_close, translate), READ_BUFFER)


class PartWriter(Writer):
    """Buffers at most one part, then uploads it: the memory of an upload is one
    part whatever the object's size. A part goes out only once more data follows
    it, so the last part is never empty; an object smaller than a part is sent
    with a single request.

    Subclasses implement the five store calls below; a failure of any of them
    aborts the upload and propagates as a StorageError.
    """

    part_size = PART_SIZE

    def __init__(self, provider=None, key: str = "", content_type: str = "") -> None:
        self._p = provider
        self._key = key
        self._content_type = content_type
        self._buffer = bytearray()
        self._parts = 0
        self._done = False
        self.bytes_written = 0

    # The store's calls --------------------------------------------------------------

    @abc.abstractmethod
    def _put_whole(self, data: bytes) -> None:
        """Upload a small object in one request."""

    @abc.abstractmethod
    def _begin(self) -> None:
        """Start a multipart (or block, or resumable) upload."""

    @abc.abstractmethod
    def _put_part(self, number: int, data: bytes) -> None:
        """Upload part ``number`` (1-based)."""

    @abc.abstractmethod
    def _commit(self) -> None:
        """Make the object appear from the parts sent."""

    @abc.abstractmethod
    def _cancel(self) -> None:
        """Discard the started upload (best effort, must not raise)."""

    # Writer -------------------------------------------------------------------------

    def write(self, data) -> int:
        if self._done:
            raise ValueError("write to a closed or aborted writer")
        size = len(data)
        self._buffer += data
        self.bytes_written += size
        while len(self._buffer) > self.part_size:
            with memoryview(self._buffer) as view:
                part = bytes(view[: self.part_size])
            del self._buffer[: self.part_size]
            self._send(part)
        return size

    def _send(self, part: bytes) -> None:
        try:
            if self._parts == 0:
                self._begin()
            self._parts += 1
            self._put_part(self._parts, part)
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        if self._done:
            return
        try:
            if self._parts == 0:
                self._put_whole(bytes(self._buffer))
            else:
                self._send(bytes(self._buffer))
                self._commit()
        except BaseException:
            self.abort()
            raise
        finally:
            self._done = True
            self._buffer = bytearray()

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._buffer = bytearray()
            if self._parts:
                self._cancel()


class Translated:
    """A provider whose SDK calls run inside ``translated(action, key)``: any failure
    but a StorageError leaves it as the StorageError ``_translate`` makes of it."""

    @contextlib.contextmanager
    def translated(self, action: str, key: str | None = None):
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            raise self._translate(exc, action, key) from None


class ObjectLocking:
    """The retention of an S3-style store (AWS, MinIO): what ``set_retention`` asked for,
    and the Content-MD5 a locking bucket wants on every upload (AWS refuses it without)."""

    _locking = False  # the bucket locks objects by default

    def set_retention(self, retention) -> None:
        self.retention = retention

    def content_md5(self, data: bytes) -> str | None:
        if self.retention is None and not self._locking:
            return None
        return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
