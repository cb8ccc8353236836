"""Sealed objects: round trips at chunk edges, and every kind of damage is caught."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest

from backups.engine.storage import sealed
from backups.engine.storage.sealed import CHUNK, TAG, SealError, open_sealed, seal_bytes

KEY = os.urandom(32)
KEYS = {"k1": KEY}.__getitem__


def opened(blob: bytes, keys=KEYS) -> bytes:
    with open_sealed(io.BytesIO(blob), keys) as stream:
        return stream.read()


def header_size(key_id: str = "k1") -> int:
    return len(sealed.MAGIC) + 1 + len(key_id) + sealed.SALT


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 7])
def test_round_trip_at_chunk_edges(size):
    plain = os.urandom(size)
    blob = seal_bytes(plain, "k1", KEY)
    assert opened(blob) == plain
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == header_size() + size + chunks * TAG


def test_sealed_objects_show_nothing_of_the_plain_text():
    plain = b'{"kind": "Secret", "data": {"password": "aHVudGVyMg=="}}' * 100
    blob = seal_bytes(plain, "k1", KEY)
    assert b"Secret" not in blob and b"aHVudGVy" not in blob
    assert not blob.startswith(b"\x1f\x8b") and sealed.is_sealed(blob)
    # The same text sealed twice differs (a fresh salt per object).
    assert seal_bytes(plain, "k1", KEY) != blob


def test_a_flipped_bit_is_detected():
    blob = bytearray(seal_bytes(os.urandom(CHUNK + 100), "k1", KEY))
    blob[header_size() + CHUNK // 2] ^= 0x01
    with pytest.raises(SealError, match="tampered"):
        opened(bytes(blob))


def test_a_changed_header_is_detected():
    blob = bytearray(seal_bytes(b"hello", "k1", KEY))
    blob[-TAG - 6] ^= 0x01  # inside the salt
    with pytest.raises(SealError, match="does not open"):
        opened(bytes(blob))


@pytest.mark.parametrize("cut", [1, TAG, CHUNK // 2])
def test_a_truncated_object_is_detected(cut):
    blob = seal_bytes(os.urandom(2 * CHUNK + 10), "k1", KEY)
    with pytest.raises(SealError):
        opened(blob[:-cut])


def test_dropping_the_last_whole_chunk_is_detected():
    blob = seal_bytes(os.urandom(2 * CHUNK + 10), "k1", KEY)
    with pytest.raises(SealError, match="chunk 1"):
        opened(blob[: header_size() + 2 * (CHUNK + TAG)])


def test_bytes_after_the_last_chunk_are_detected():
    blob = seal_bytes(os.urandom(CHUNK), "k1", KEY)
    with pytest.raises(SealError):
        opened(blob + seal_bytes(b"more", "k1", KEY)[header_size() :])


def test_swapped_chunks_are_detected():
    blob = seal_bytes(os.urandom(3 * CHUNK + 5), "k1", KEY)
    start, size = header_size(), CHUNK + TAG
    first, second = blob[start : start + size], blob[start + size : start + 2 * size]
    swapped = blob[:start] + second + first + blob[start + 2 * size :]
    with pytest.raises(SealError, match="chunk 0"):
        opened(swapped)


def test_a_chunk_from_another_object_is_detected():
    one = seal_bytes(os.urandom(CHUNK + 5), "k1", KEY)
    two = seal_bytes(os.urandom(CHUNK + 5), "k1", KEY)
    start, size = header_size(), CHUNK + TAG
    spliced = one[:start] + two[start : start + size] + one[start + size :]
    with pytest.raises(SealError):
        opened(spliced)


def test_an_unknown_key_and_a_wrong_key_are_told_apart():
    blob = seal_bytes(b"data", "k1", KEY)
    with pytest.raises(SealError, match="does not hold"):
        opened(blob, {}.__getitem__)
    with pytest.raises(SealError, match="does not open"):
        opened(blob, {"k1": os.urandom(32)}.__getitem__)


def test_a_plain_object_under_an_encrypting_location_is_refused():
    with pytest.raises(SealError, match="not sealed"):
        opened(b"\x1f\x8b\x08plain gzip")
    with pytest.raises(SealError):
        opened(b"")


def test_messages_never_hold_key_material():
    blob = bytearray(seal_bytes(b"x" * 10, "k1", KEY))
    blob[-1] ^= 1
    with pytest.raises(SealError) as caught:
        opened(bytes(blob))
    assert KEY.hex() not in str(caught.value) and repr(KEY) not in str(caught.value)


class _Sink(sealed._BytesWriter):
    """Keeps only the size, so the test measures the sealer, not the sink."""

    def __init__(self):
        super().__init__()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_memory_stays_bounded_while_streaming():
    sink, piece = _Sink(), os.urandom(256 * 1024)
    tracemalloc.start()
    with sealed.SealingWriter(sink, "k1", KEY) as writer:
        for _ in range(64):  # 16 MiB
            writer.write(piece)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sink.size == header_size() + 16 * CHUNK + 16 * TAG
    assert peak < 6 * CHUNK


def test_reading_in_small_pieces_streams():
    plain = os.urandom(2 * CHUNK + 3)
    stream = open_sealed(io.BytesIO(seal_bytes(plain, "k1", KEY)), KEYS)
    parts = iter(lambda: stream.read(4096), b"")
    assert b"".join(parts) == plain
