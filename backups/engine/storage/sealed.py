"""Client-side encryption of every object the console writes under a location.

An object is sealed as a header and a run of chunks::

    header  = MAGIC (8) | key-id length (1) | key id (ascii) | salt (16)
    chunk i = AES-256-GCM(object key, nonce(i, last), up to CHUNK bytes, aad=header)

The object key is HKDF-SHA256(data key, salt), so no two objects share a key
and a nonce never repeats. The nonce holds the chunk's number and whether it
is the last chunk: a flipped bit, a swapped or dropped chunk, a cut-off end or
bytes added after the last chunk each fail to open, with a sentence saying so.
Memory stays at about one chunk whatever the object's size.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backups.engine.storage.base import (
    ObjectInfo,
    Provider,
    StorageError,
    Writer,
    check_range,
    read_up_to,
)

MAGIC = b"PALSEAL1"
CHUNK = 1024 * 1024
TAG = 16
SALT = 16
MAX_CHUNKS = 2**32 - 1

# Key lookup: key id -> 32-byte data key (raises KeyError for an unknown id).
KeyLookup = Callable[[str], bytes]


class SealError(StorageError):
    """A sealed object that does not open: tampered, truncated, reordered, unknown key."""

    reason = "sealed"


def is_sealed(head: bytes) -> bool:
    """Whether the first bytes of an object are a sealed object's header."""
    return head.startswith(MAGIC)


def encrypted_message(what: str = "This object") -> str:
    """The sentence a Velero-format reader gives for a sealed object."""
    return (
        f"{what} is encrypted by the console (client-side encryption on its location); "
        "Velero and other tools cannot read it. Restore or download it through the console."
    )


def _object_key(data_key: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"palette-sealed-v1")
    return AESGCM(key.derive(data_key))


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">7xIB", index, 1 if last else 0)


def header(key_id: str, salt: bytes) -> bytes:
    raw = key_id.encode("ascii")
    if not 0 < len(raw) < 256:
        raise ValueError("a key id is 1 to 255 ascii characters")
    return MAGIC + bytes([len(raw)]) + raw + salt


def read_header(stream: BinaryIO) -> tuple[bytes, str]:
    """(the header's bytes, the key id) from the start of ``stream``."""
    start = read_up_to(stream, len(MAGIC) + 1)
    if len(start) < len(MAGIC) + 1 or not is_sealed(start):
        raise SealError(
            "The object is not sealed by the console, but its location encrypts every "
            "object: it was replaced or written by another tool."
        )
    key_id = read_up_to(stream, start[-1])
    salt = read_up_to(stream, SALT)
    if len(key_id) < start[-1] or len(salt) < SALT:
        raise SealError("The sealed object is truncated inside its header.")
    return start + key_id + salt, key_id.decode("ascii", "replace")


class SealingWriter(Writer):
    """Encrypts into ``inner`` (a provider's writer) one chunk at a time."""

    def __init__(self, inner: Writer, key_id: str, data_key: bytes):
        self.inner = inner
        salt = os.urandom(SALT)
        self._aad = header(key_id, salt)
        self._aead = _object_key(data_key, salt)
        self._buffer = bytearray()
        self._index = 0
        self.bytes_written = 0
        inner.write(self._aad)

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.bytes_written += len(data)
        # Keep at least one byte back: only close() knows which chunk is the last.
        while len(self._buffer) > CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _emit(self, plain: bytes, last: bool) -> None:
        if self._index > MAX_CHUNKS:
            raise SealError("The object is too large to seal.")
        self.inner.write(self._aead.encrypt(_nonce(self._index, last), plain, self._aad))
        self._index += 1

    def close(self) -> None:
        self._emit(bytes(self._buffer), last=True)
        self._buffer = bytearray()
        self.inner.close()

    def abort(self) -> None:
        self._buffer = bytearray()
        self.inner.abort()


class OpeningReader(io.RawIOBase):
    """Decrypts a sealed stream; a chunk is released only once it opened."""

    def __init__(self, inner: BinaryIO, keys: KeyLookup, name: str = "The object"):
        self.inner = inner
        self.name_for_errors = name
        self._aad, key_id = read_header(inner)
        try:
            data_key = keys(key_id)
        except KeyError:
            raise SealError(
                f"{name} is sealed with data key {key_id!r}, which this location does not hold."
            ) from None
        self._aead = _object_key(data_key, self._aad[-SALT:])
        self._index = 0
        self._pending = memoryview(b"")
        self._done = False
        self._next = read_up_to(inner, CHUNK + TAG)

    def readable(self) -> bool:
        return True

    def _open_next(self) -> None:
        sealed = self._next
        if len(sealed) < TAG:
            raise SealError(f"{self.name_for_errors} is truncated: its last chunk is missing.")
        self._next = read_up_to(self.inner, CHUNK + TAG) if len(sealed) == CHUNK + TAG else b""
        last = not self._next
        plain = _open_chunk(self._aead, self._index, sealed, self._aad, self.name_for_errors, last)
        self._pending = memoryview(plain)
        self._index += 1
        self._done = last

    def readinto(self, buffer) -> int:
        while not self._pending:
            if self._done:
                return 0
            self._open_next()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            super().close()


def _open_chunk(
    aead: AESGCM, number: int, piece: bytes, aad: bytes, name: str, last: bool | None = None
) -> bytes:
    """Chunk ``number``, opened. ``last`` None (a ranged read, the object's size unknown):
    a full-size chunk may be the last one or not, so both nonces are tried."""
    if len(piece) < TAG:
        raise SealError(f"{name} is truncated: its last chunk is missing.")
    if last is not None:
        tries: tuple[bool, ...] = (last,)
    else:
        tries = (False, True) if len(piece) == CHUNK + TAG else (True,)
    for last in tries:
        try:
            return aead.decrypt(_nonce(number, last), piece, aad)
        except InvalidTag:
            continue
    raise SealError(
        f"{name} does not open at chunk {number}: it was tampered with, truncated or its "
        "chunks reordered."
    )


def open_sealed(inner: BinaryIO, keys: KeyLookup, name: str = "The object") -> BinaryIO:
    return io.BufferedReader(OpeningReader(inner, keys, name), buffer_size=CHUNK)


def seal_bytes(plain: bytes, key_id: str, data_key: bytes) -> bytes:
    """Small objects and tests: the sealed form of ``plain``."""
    sink = _BytesWriter()
    with SealingWriter(sink, key_id, data_key) as writer:
        writer.write(plain)
    return sink.value


class _BytesWriter(Writer):
    def __init__(self):
        self._parts: list[bytes] = []
        self.value = b""

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def close(self) -> None:
        self.value = b"".join(self._parts)

    def abort(self) -> None:
        self._parts = []


class SealedProvider(Provider):
    """A provider that seals everything written through it and opens what it reads.

    ``current`` gives the (key id, data key) new objects are sealed with; ``keys``
    finds any key of the location by id, so objects sealed before a rotation open.
    """

    def __init__(self, inner: Provider, current: Callable[[], tuple[str, bytes]], keys: KeyLookup):
        self.inner = inner
        self._current = current
        self._keys = keys

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        key_id, data_key = self._current()
        return SealingWriter(
            self.inner.open_write(key, "application/octet-stream"), key_id, data_key
        )

    def open_read(self, key: str) -> BinaryIO:
        stream = self.inner.open_read(key)
        try:
            return open_sealed(stream, self._keys, name=f"Object {key.rsplit('/', 1)[-1]}")
        except BaseException:
            stream.close()
            raise

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Plaintext bytes ``start .. start+length`` of a sealed object: only the chunks
        that hold them are read (two ranged reads: the header, then those chunks), and
        each opens as in a whole read, so a tampered chunk fails the same way."""
        if not check_range(start, length):
            return b""
        name = f"Object {key.rsplit('/', 1)[-1]}"
        head = self.inner.read_range(key, 0, len(MAGIC) + 1 + 255 + SALT)
        aad, key_id = read_header(io.BytesIO(head))
        try:
            aead = _object_key(self._keys(key_id), aad[-SALT:])
        except KeyError:
            raise SealError(
                f"{name} is sealed with data key {key_id!r}, which this location does not hold."
            ) from None
        first, last = start // CHUNK, (start + length - 1) // CHUNK
        sealed = self.inner.read_range(
            key, len(aad) + first * (CHUNK + TAG), (last - first + 1) * (CHUNK + TAG)
        )
        plain = []
        for number, at in enumerate(range(0, len(sealed), CHUNK + TAG), start=first):
            piece = sealed[at : at + CHUNK + TAG]
            plain.append(_open_chunk(aead, number, piece, aad, name))
        return b"".join(plain)[start - first * CHUNK :][:length]

    def plain_size(self, sealed_size: int) -> int:
        """The size of what was sealed into an object of ``sealed_size`` bytes, for a
        listing (restic checks sizes). Assumes the header of the current key, as every
        key id the console makes has the same length (``keys.new_key_id``)."""
        body = sealed_size - len(header(self.key_id, bytes(SALT)))
        chunks = max(1, -(-body // (CHUNK + TAG)))
        return max(0, body - chunks * TAG)

    @property
    def key_id(self) -> str:
        """The data key this provider seals with."""
        return self._current()[0]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def list_folders(self, prefix: str = "") -> list[str]:
        return self.inner.list_folders(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def close(self) -> None:
        self.inner.close()

    # Object lock belongs to the store underneath (the base class's would refuse it).
    def set_retention(self, retention) -> None:
        self.inner.set_retention(retention)

    def lock_config(self):
        return self.inner.lock_config()

    def __getattr__(self, name: str):
        # Provider-specific extras (object lock, hide, ...) pass straight through.
        return getattr(self.inner, name)


def sealed_with(provider: Provider) -> str:
    """The id of the data key ``provider`` seals with; "" for a plain location."""
    return provider.key_id if isinstance(provider, SealedProvider) else ""
