"""etcd snapshots: take one into a location.

``take_snapshot(request, progress=, log=, should_stop=) -> SnapshotOutcome`` streams
etcd's Maintenance.Snapshot call from the request's endpoint (with its TLS client
certificates) straight into ``Layout(prefix).etcd_file(cluster, name)``, hashing on
the way. Memory stays at one upload part whatever the database size. Reads the
member's Status first (version, revision, member id; a cluster ID other than the
expected one is refused) and the member list (its name). Never raises for an etcd
or store failure. ``should_stop()`` is asked between chunks: a cancelled snapshot
aborts its upload and leaves no object.

Verifying is ``etcd/verify.py``; restoring, ``etcd/runbook.py`` (guided) and
``etcd/restore.py`` (carried out by the console on a local control plane).

What is stored is exactly what ``etcdctl snapshot save`` writes: the bbolt
database followed by the 32-byte sha256 etcd appends to it, so ``etcdutl
snapshot restore`` checks the file's integrity itself. ``revision`` is the
member's revision when the snapshot started (the Status call just before it);
``verify_snapshot`` reads the exact one from the file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from backups.engine.etcd.client import (
    STALL_TIMEOUT,
    EtcdError,
    Member,
    MemberStatus,
    check_cluster_id,
    connect,
    tls_of,
)
from backups.engine.inputs import SnapshotRequest
from backups.engine.job import CANCELLED, Cancelled, ShouldStop, never
from backups.engine.storage.base import StorageError
from backups.engine.words import counted

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between progress callbacks
CONNECT_TIMEOUT = 10.0


@dataclass
class SnapshotOutcome:
    ok: bool
    error: str = ""  # one sentence when not ok
    reason: str = ""  # short code: config, unreachable, timeout, tls_server, tls_client, ...
    key: str = ""  # object key in the location (set even when the upload failed)
    size_bytes: int = 0
    sha256: str = ""
    revision: int | None = None
    etcd_version: str = ""
    member: str = ""  # member name (or hex id when the name is not known)
    member_id: str = ""  # hex
    cluster_id: str = ""  # hex
    endpoint: str = ""  # the endpoint that served the snapshot
    db_size: int = 0  # database size etcd announced
    duration_seconds: float = 0.0
    cancelled: bool = False

    @property
    def phase(self) -> str:
        return "Completed" if self.ok else CANCELLED if self.cancelled else "Failed"

    @property
    def mb_per_second(self) -> float:
        return self.size_bytes / 1e6 / self.duration_seconds if self.duration_seconds else 0.0


def take_snapshot(
    request: SnapshotRequest,
    *,
    progress: Callable[[int, int, str], None],
    log: Callable[[str], None],
    should_stop: ShouldStop = never,
    connect_timeout: float = CONNECT_TIMEOUT,
    stall_timeout: float = STALL_TIMEOUT,
) -> SnapshotOutcome:
    """Stream one snapshot of ``request.etcd`` into ``request.store``.

    ``progress(bytes_done, bytes_expected, phase)`` is called a few times a second
    (``bytes_expected`` is 0 until etcd announced the size); phases: "Connecting",
    "Streaming NN%", "Committing", "Completed".
    """
    run = _SnapshotExecutor(request, progress, log, should_stop, connect_timeout, stall_timeout)
    return run.run()


class _SnapshotExecutor:
    def __init__(self, request, progress, log, should_stop, connect_timeout, stall_timeout):
        self.request = request
        self.provider = request.store.provider
        self._progress = progress
        self._log = log
        self.should_stop = should_stop
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.outcome = SnapshotOutcome(ok=False)
        self.expected = 0
        self._last_progress = 0.0

    def log(self, text: str) -> None:
        self._log(text)

    def progress(self, done: int, phase: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            self._progress(done, self.expected, phase)

    def run(self) -> SnapshotOutcome:
        started = time.monotonic()
        out = self.outcome
        try:
            self._run()
            out.ok = True
        except EtcdError as err:
            out.error, out.reason = str(err), err.reason
        except Cancelled:
            out.cancelled, out.reason = True, "cancelled"
        except StorageError as err:
            location = self.request.store.name
            out.error = f"Could not store the snapshot in location {location}: {err}"
            out.reason = "storage"
        except Exception as err:  # a bug must not leave the job running
            logger.exception("etcd snapshot %s failed unexpectedly", self.request.name)
            out.error = (
                f"Unexpected error while taking the snapshot: {err.__class__.__name__}: {err}"
            )
            out.reason = "error"
        out.duration_seconds = time.monotonic() - started
        if out.ok:
            self.progress(out.size_bytes, "Completed", force=True)
            self.log(
                f"Stored {_mib(out.size_bytes)} in {out.duration_seconds:.1f} s "
                f"({out.mb_per_second:.1f} MB/s), sha256 {out.sha256}"
            )
        elif out.cancelled:
            self.log("Cancelled: the upload was aborted; nothing is kept in the location.")
        else:
            self.log(f"Failed: {out.error}")
        return out

    def _run(self) -> None:
        etcd, out = self.request.etcd, self.outcome
        if not etcd.endpoint:
            raise EtcdError(
                f"Cluster {etcd.cluster_name} has no etcd endpoint: add one (and its client "
                "certificates) on the cluster's page to take etcd snapshots.",
                "config",
            )
        out.key = self.request.key
        self.progress(0, "Connecting", force=True)
        tls = tls_of(etcd)
        self.log(f"Connecting to etcd at {etcd.endpoint}")
        client, status = connect(etcd.endpoint, tls, timeout=self.connect_timeout)
        with client:
            check_cluster_id(status, etcd)
            if not client.endpoint.tls and (tls.cert or tls.ca):
                self.log("The endpoint is plain http: the stored certificates are not used.")
            members = self._members(client)
            self._describe(status, members)
            self._stream(client)
            self._after(client, status)

    def _members(self, client) -> list[Member]:
        try:
            return client.members()
        except EtcdError as err:
            self.log(f"Could not list the members ({err}); the member is named by its id.")
            return []

    def _describe(self, status: MemberStatus, members: list[Member]) -> None:
        out = self.outcome
        name = next((m.name for m in members if m.id == status.member_id), "")
        out.member = name or status.member_hex
        out.member_id = status.member_hex
        out.cluster_id = f"{status.cluster_id:x}"
        out.etcd_version = status.version
        out.revision = status.revision
        out.endpoint = status.endpoint
        out.db_size = status.db_size
        role = "leader" if status.leader_id == status.member_id else "follower"
        if status.is_learner:
            role = "learner"
        self.log(
            f"etcd {status.version}, member {out.member} (id {status.member_hex}, {role}), "
            f"revision {status.revision}, database {_mib(status.db_size)}, "
            f"{counted(len(members), 'member')}"
        )
        if status.errors:
            self.log("etcd reports: " + "; ".join(status.errors))

    def _stream(self, client) -> None:
        out = self.outcome
        where = f"{self.request.store.name}: {out.key}"
        self.log(f"Streaming the snapshot into {where}")
        stream = client.snapshot(stall_timeout=self.stall_timeout)
        self.progress(0, "Streaming 0%", force=True)
        committing = False
        try:
            with self.provider.open_write(out.key) as writer:
                for blob in stream:
                    if self.should_stop():
                        raise Cancelled  # the writer aborts; the stream's call is cancelled
                    writer.write(blob)
                    if stream.expected:
                        self.expected = stream.expected
                        percent = min(99, int(100 * stream.received / stream.expected))
                        self.progress(stream.object_size, f"Streaming {percent}%")
                self.progress(stream.object_size, "Committing", force=True)
                committing = True
        except StorageError:
            if committing:
                # The commit itself failed: make sure no half-committed object stays.
                try:
                    self.provider.delete(out.key)
                except StorageError as err:
                    self.log(f"Could not remove the failed upload {out.key}: {err}")
            raise
        out.size_bytes = stream.object_size
        out.sha256 = stream.object_sha256()
        if stream.checksum is None:
            self.log("etcd sent no checksum after the database (etcd older than 3.4?).")
        else:
            self.log("The database matches the sha256 etcd sent with it.")

    def _after(self, client, before: MemberStatus) -> None:
        try:
            after = client.status()
        except EtcdError:
            return
        if after.revision != before.revision:
            self.log(
                f"etcd moved from revision {before.revision} to {after.revision} during the "
                f"snapshot; the snapshot holds revision {before.revision} or a little later."
            )


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
