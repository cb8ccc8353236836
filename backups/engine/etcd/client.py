"""The console's own etcd v3 client: Status, MemberList and the Snapshot stream.

aetcd ships etcd's generated gRPC stubs but its ``Client.connect`` only opens
insecure channels, and it is asyncio-only. The console needs TLS with client
certificates (as a production etcd demands) and runs in Celery workers, so this
module builds its own synchronous channel and uses aetcd's stubs on it:

- ``https://`` endpoints get ``grpc.ssl_channel_credentials`` built from the
  cluster's PEM strings (CA, client certificate, client key; no temp files).
  Without a CA the machine's trusted roots are used.
- ``http://`` endpoints get a plain channel; certificates are then ignored.

Endpoints and certificates: ``tls.py``. Every failure is an ``EtcdError``
(``errors.py``) whose message is a sentence a person can act on.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import grpc
from aetcd import rpc

from backups.engine.etcd.errors import EtcdError, seconds_text, translate
from backups.engine.etcd.tls import Endpoint, TLSConfig, check_tls, parse_endpoints, tls_of

__all__ = [
    "EtcdClient",
    "EtcdError",
    "Member",
    "MemberStatus",
    "SnapshotStream",
    "check_tls",
    "connect",
    "members_of",
    "parse_endpoints",
    "tls_of",
]

CONNECT_TIMEOUT = 10.0  # seconds for Status / MemberList
STALL_TIMEOUT = 60.0  # seconds without a snapshot message before giving up
CHECKSUM_SIZE = 32  # etcd ends the snapshot stream with the sha256 of the database

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    # A dead peer in the middle of a long stream is noticed within a minute.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 20_000),
]

# --- what etcd tells ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberStatus:
    endpoint: str
    version: str  # etcd server version, e.g. 3.6.16
    revision: int  # key-value store revision at the time of the call
    member_id: int
    cluster_id: int
    leader_id: int
    db_size: int
    raft_term: int
    is_learner: bool
    errors: tuple[str, ...] = ()

    @property
    def member_hex(self) -> str:
        return f"{self.member_id:x}"


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    def as_dict(self) -> dict:
        """The shape ``runbook(members=...)`` takes (JSON-friendly, id in hex)."""
        data = asdict(self)
        data.update(
            id=f"{self.id:x}", peer_urls=list(self.peer_urls), client_urls=list(self.client_urls)
        )
        return data


# --- the client -----------------------------------------------------------------------------


class EtcdClient:
    """One endpoint, one channel. Use as a context manager (closes the channel)."""

    def __init__(self, endpoint: Endpoint, tls: TLSConfig, *, timeout: float = CONNECT_TIMEOUT):
        self.endpoint = endpoint
        self.tls = tls
        self.timeout = timeout
        if endpoint.tls:
            self.channel = grpc.secure_channel(
                endpoint.target, tls.credentials(), options=_CHANNEL_OPTIONS
            )
        else:
            self.channel = grpc.insecure_channel(endpoint.target, options=_CHANNEL_OPTIONS)
        self.maintenance = rpc.MaintenanceStub(self.channel)
        self.cluster = rpc.ClusterStub(self.channel)

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def status(self) -> MemberStatus:
        try:
            resp = self.maintenance.Status(rpc.StatusRequest(), timeout=self.timeout)
        except grpc.RpcError as err:
            raise translate(err, self.endpoint, self.tls, self.timeout) from None
        return MemberStatus(
            endpoint=self.endpoint.url,
            version=resp.version,
            revision=resp.header.revision,
            member_id=resp.header.member_id,
            cluster_id=resp.header.cluster_id,
            leader_id=resp.leader,
            db_size=resp.dbSize,
            raft_term=resp.raftTerm,
            is_learner=resp.isLearner,
            errors=tuple(resp.errors),
        )

    def members(self) -> list[Member]:
        try:
            resp = self.cluster.MemberList(rpc.MemberListRequest(), timeout=self.timeout)
        except grpc.RpcError as err:
            raise translate(err, self.endpoint, self.tls, self.timeout) from None
        return [
            Member(m.ID, m.name, tuple(m.peerURLs), tuple(m.clientURLs), m.isLearner)
            for m in resp.members
        ]

    def snapshot(self, *, stall_timeout: float = STALL_TIMEOUT) -> SnapshotStream:
        return SnapshotStream(self, stall_timeout)


class SnapshotStream:
    """Iterate to get the bytes to store, in order, as etcd sends them.

    etcd (3.4 and later) sends the database in 32 KiB messages, each telling
    how many bytes remain, then one last 32-byte message: the sha256 of the
    database. That checksum is part of what ``etcdctl snapshot save`` writes
    and what ``etcdutl snapshot restore`` checks, so it is yielded (stored) too.
    The stream checks it against its own hash of the database as it goes and
    raises EtcdError(corrupt) at the end if they differ or bytes are missing.

    A watchdog cancels the call when no message came for ``stall_timeout``
    seconds (a hung member or a dead network path).
    """

    def __init__(self, client: EtcdClient, stall_timeout: float):
        self.client = client
        self.stall_timeout = stall_timeout
        self.expected: int | None = None  # database size, known after the first message
        self.received = 0  # database bytes (without the checksum)
        self.checksum: bytes | None = None  # what etcd sent
        self._data_hash = hashlib.sha256()
        self._stalled = False
        self._last = time.monotonic()
        self._done = threading.Event()
        self._call = None

    @property
    def object_size(self) -> int:
        return self.received + (len(self.checksum) if self.checksum else 0)

    def object_sha256(self) -> str:
        """sha256 of everything yielded (the stored object), without hashing twice."""
        whole = self._data_hash.copy()
        if self.checksum:
            whole.update(self.checksum)
        return whole.hexdigest()

    def _watch(self) -> None:
        while not self._done.wait(1.0):
            if time.monotonic() - self._last > self.stall_timeout:
                self._stalled = True
                self._call.cancel()
                return

    def __iter__(self) -> Iterator[bytes]:
        endpoint = self.client.endpoint
        self._call = self.client.maintenance.Snapshot(rpc.SnapshotRequest())
        watchdog = threading.Thread(target=self._watch, name="etcd-snapshot-watchdog", daemon=True)
        watchdog.start()
        data_ended = False
        try:
            for resp in self._call:
                self._last = time.monotonic()
                blob = resp.blob
                if self.expected is None:
                    self.expected = resp.remaining_bytes + len(blob)
                if data_ended:
                    if self.checksum is not None or len(blob) != CHECKSUM_SIZE:
                        raise EtcdError(
                            f"etcd at {endpoint.url} sent more than the snapshot and its "
                            "checksum; the stream is not a snapshot this console understands.",
                            "corrupt",
                        )
                    self.checksum = blob
                    yield blob
                    continue
                self.received += len(blob)
                self._data_hash.update(blob)
                if resp.remaining_bytes == 0:
                    data_ended = True
                yield blob
        except grpc.RpcError as err:
            if self._stalled:
                raise EtcdError(
                    f"etcd at {endpoint.url} stopped sending the snapshot: nothing came for "
                    f"{seconds_text(self.stall_timeout)} (timeout) after {self.received} bytes.",
                    "stalled",
                ) from None
            if self.expected is not None:
                # The connection was fine and broke mid-way: say so, not a handshake story.
                details = (err.details() if hasattr(err, "details") else "") or str(err)
                raise EtcdError(
                    f"etcd at {endpoint.url} broke off the snapshot after {self.received} of "
                    f"{self.expected} bytes ({details.split('last error:')[-1].strip()}).",
                    "unreachable",
                ) from None
            raise translate(err, endpoint, self.client.tls, self.client.timeout) from None
        finally:
            self._done.set()
            if self._call is not None and not self._done_ok():
                self._call.cancel()
        if self.expected is None or self.received != self.expected:
            raise EtcdError(
                f"etcd at {endpoint.url} ended the snapshot early: {self.received} of "
                f"{self.expected or 0} bytes arrived.",
                "corrupt",
            )
        if self.checksum is not None and self.checksum != self._data_hash.digest():
            raise EtcdError(
                f"The snapshot from etcd at {endpoint.url} does not match the checksum etcd "
                "sent with it: the data was damaged on the way.",
                "corrupt",
            )

    def _done_ok(self) -> bool:
        return self._call.done() if self._call is not None else True


def connect(
    endpoint_text: str, tls: TLSConfig, *, timeout: float = CONNECT_TIMEOUT
) -> tuple[EtcdClient, MemberStatus]:
    """Open a client on the first endpoint that answers Status; raise EtcdError otherwise.

    With several endpoints, the error of each is kept; one endpoint's error is
    raised as is, so its sentence reaches the person unchanged.
    """
    endpoints = parse_endpoints(endpoint_text, tls_default=bool(tls.ca or tls.cert))
    errors: list[EtcdError] = []
    for endpoint in endpoints:
        client = EtcdClient(endpoint, tls, timeout=timeout)
        try:
            return client, client.status()
        except EtcdError as err:
            client.close()
            errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    raise EtcdError(
        "No etcd endpoint answered: " + " ".join(str(e) for e in errors), errors[0].reason
    )


def members_of(etcd, *, timeout: float = 3.0) -> list[Member]:
    """The members of an ``EtcdEndpoint``'s etcd (raises EtcdError)."""
    client, status = connect(etcd.endpoint, tls_of(etcd), timeout=timeout)
    with client:
        check_cluster_id(status, etcd)
        return client.members()


def check_cluster_id(status: MemberStatus, etcd) -> None:
    """Refuse a member of another etcd cluster than the one recorded at registration
    (an endpoint that now points elsewhere, or someone else's etcd)."""
    expected = etcd.expected_cluster_id
    if expected is not None and status.cluster_id != expected:
        raise EtcdError(
            f"The etcd at {status.endpoint} belongs to cluster ID {status.cluster_id:x}, not "
            f"{expected:x} recorded for {etcd.cluster_name}: refused. If the etcd cluster was "
            "rebuilt on purpose, register its endpoint again.",
            "cluster_id",
        )
