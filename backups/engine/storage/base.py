"""The one small interface every storage provider implements.

Keys are paths inside the location's bucket (or directory), without the
location's prefix: callers build them with ``backups.engine.storage.layout``. Large objects
stream in both directions with bounded memory (multipart uploads, chunked
downloads); no method ever holds a whole object in memory.

Every failure is a ``StorageError`` whose message a person can act on (bad key,
missing bucket, access denied, unreachable endpoint, TLS, clock skew), and
which never contains a credential.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

# Multipart part size: S3 needs at least 5 MiB per part (but the last); 8 MiB
# keeps the memory of an upload at one part whatever the object's size.
PART_SIZE = 8 * 1024 * 1024


class StorageError(Exception):
    """A storage operation failed; ``str()`` is the sentence to show a person."""

    reason = "error"


class BadCredentials(StorageError):
    reason = "bad_credentials"


class AccessDenied(StorageError):
    reason = "access_denied"


class BucketMissing(StorageError):
    reason = "bucket_missing"


class NotFound(StorageError):
    reason = "not_found"


class Unreachable(StorageError):
    reason = "unreachable"


class TLSFailure(StorageError):
    reason = "tls"


class ClockSkew(StorageError):
    reason = "clock_skew"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime | None = None


class Writer(abc.ABC):
    """A file-like sink for one object: ``write()`` bytes, then ``close()`` to commit.

    Leaving the ``with`` block on an exception aborts: no partial object stays
    behind (multipart uploads are aborted, temp files removed).
    """

    @abc.abstractmethod
    def write(self, data: bytes) -> int: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Commit the object. After this, ``bytes_written`` is final."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Throw away what was written."""

    bytes_written: int = 0

    def writable(self) -> bool:
        return True

    def flush(self) -> None:  # noqa: B027 (file protocol: nothing to flush early)
        """Data goes out in whole parts; tarfile and gzip call this harmlessly."""

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Provider(abc.ABC):
    """Stream up, stream down, list, delete, exists: on one bucket or directory."""

    @abc.abstractmethod
    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        """A writer for ``key``; the object appears only when the writer closes."""

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A readable, streaming file object for ``key`` (raises NotFound)."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, paging as needed."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    # Object lock (locations/object_lock.py): the retention new objects get, or None.
    retention = None

    def set_retention(self, retention) -> None:
        """Lock every object written from now on with ``retention`` (mode, until)."""
        if retention is not None:
            raise StorageError("This store cannot lock objects.")

    def lock_config(self):
        """The bucket's object-lock settings (a ``BucketLock``)."""
        raise StorageError("This store cannot lock objects.")

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        """Small objects (metadata files)."""
        with self.open_write(key, content_type) as writer:
            writer.write(data)

    def get_bytes(self, key: str) -> bytes:
        """Small objects only; large ones go through ``open_read``."""
        with self.open_read(key) as stream:
            return stream.read()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from byte ``start`` (fewer where the object ends;
        raises NotFound). For pieces of large objects (one gzip member of an archive).

        Every provider of the console overrides this with one ranged request; this
        fallback reads through from the start, discarding what comes before."""
        if not check_range(start, length):
            return b""
        with self.open_read(key) as stream:
            skip = start
            while skip > 0:
                chunk = stream.read(min(skip, PART_SIZE))
                if not chunk:
                    return b""
                skip -= len(chunk)
            return read_up_to(stream, length)

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the "folders" directly under ``prefix`` (which ends with "/").

        Stores that can list by delimiter override this with one request a page.
        """
        names = set()
        for info in self.list(prefix):
            rest = info.key[len(prefix) :]
            if "/" in rest:
                names.add(rest.split("/", 1)[0])
        return sorted(names)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    def close(self) -> None:  # noqa: B027 (only some providers hold connections)
        """Release connections; the provider is not used afterwards."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_range(start: int, length: int) -> bool:
    """Whether a range asks for any bytes; ValueError for a negative start or length."""
    if start < 0 or length < 0:
        raise ValueError("a range starts and runs at 0 or more bytes")
    return length > 0


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only where it ends (a read may return less)."""
    parts, left = [], size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
