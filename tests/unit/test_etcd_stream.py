"""The snapshot stream: etcd's message protocol, its checksum, truncation and stalls."""

from __future__ import annotations

import hashlib
import threading

import grpc
import pytest
from aetcd import rpc

from backups.engine.etcd.client import EtcdError, SnapshotStream
from backups.engine.etcd.tls import TLSConfig, parse_endpoints

DATABASE = bytes(range(256)) * 400  # 100 KiB
CHECKSUM = hashlib.sha256(DATABASE).digest()


def messages(database=DATABASE, checksum=CHECKSUM, chunk=32 * 1024):
    """What etcd sends: chunks that say how much remains, then the checksum."""
    out = []
    for start in range(0, len(database), chunk):
        blob = database[start : start + chunk]
        out.append(
            rpc.SnapshotResponse(remaining_bytes=len(database) - start - len(blob), blob=blob)
        )
    if checksum is not None:
        out.append(rpc.SnapshotResponse(remaining_bytes=0, blob=checksum))
    return out


class Cancelled(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.CANCELLED

    def details(self):
        return "Locally cancelled by application!"


class FakeCall:
    def __init__(self, responses, hang=False):
        self.responses, self.hang = list(responses), hang
        self.cancelled = threading.Event()

    def __iter__(self):
        yield from self.responses
        if self.hang:
            self.cancelled.wait(10)
            raise Cancelled()

    def cancel(self):
        self.cancelled.set()

    def done(self):
        return not self.hang or self.cancelled.is_set()


class FakeClient:
    endpoint = parse_endpoints("https://etcd-1:2379")[0]
    tls = TLSConfig()
    timeout = 10.0

    def __init__(self, call):
        self.call = call
        self.maintenance = self

    def Snapshot(self, request):  # noqa: N802 (gRPC's method name)
        return self.call


def stream_of(call, stall_timeout=60.0):
    return SnapshotStream(FakeClient(call), stall_timeout)


def test_the_database_and_its_checksum_are_yielded_and_checked():
    stream = stream_of(FakeCall(messages()))
    stored = b"".join(stream)
    assert stored == DATABASE + CHECKSUM  # what `etcdctl snapshot save` writes
    assert stream.expected == stream.received == len(DATABASE)
    assert stream.object_size == len(stored)
    assert stream.object_sha256() == hashlib.sha256(stored).hexdigest()


def test_an_old_etcd_without_checksum_is_accepted():
    stream = stream_of(FakeCall(messages(checksum=None)))
    assert b"".join(stream) == DATABASE and stream.checksum is None
    assert stream.object_sha256() == hashlib.sha256(DATABASE).hexdigest()


def test_a_wrong_checksum_fails():
    stream = stream_of(FakeCall(messages(checksum=b"\0" * 32)))
    with pytest.raises(EtcdError, match="does not match the checksum etcd sent") as err:
        b"".join(stream)
    assert err.value.reason == "corrupt"


def test_a_stream_that_ends_early_fails():
    stream = stream_of(FakeCall(messages()[:2]))
    with pytest.raises(EtcdError, match="ended the snapshot early: 65536 of 102400 bytes"):
        b"".join(stream)


def test_more_than_a_checksum_after_the_database_fails():
    extra = rpc.SnapshotResponse(remaining_bytes=0, blob=b"x" * 32)
    with pytest.raises(EtcdError, match="sent more than the snapshot"):
        b"".join(stream_of(FakeCall([*messages(), extra])))


def test_a_stalled_stream_is_cancelled_with_a_clear_sentence():
    call = FakeCall(messages(checksum=None)[:1], hang=True)
    with pytest.raises(EtcdError) as err:
        b"".join(stream_of(call, stall_timeout=0.5))
    assert str(err.value) == (
        "etcd at https://etcd-1:2379 stopped sending the snapshot: nothing came for 0.5 seconds "
        "(timeout) after 32768 bytes."
    )
    assert err.value.reason == "stalled" and call.cancelled.is_set()


def test_abandoning_the_stream_cancels_the_call():
    call = FakeCall(messages(checksum=None)[:1], hang=True)
    iterator = iter(stream_of(call))
    next(iterator)
    iterator.close()  # e.g. the store failed while writing
    assert call.cancelled.is_set()


class Broken(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "Socket closed"


class BreakingCall(FakeCall):
    def __iter__(self):
        yield from self.responses
        raise Broken()


def test_a_connection_lost_mid_stream_says_how_far_it_got():
    with pytest.raises(EtcdError) as err:
        b"".join(stream_of(BreakingCall(messages()[:1])))
    assert str(err.value) == (
        "etcd at https://etcd-1:2379 broke off the snapshot after 32768 of 102400 bytes "
        "(Socket closed)."
    )
