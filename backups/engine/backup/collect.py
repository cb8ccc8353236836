"""Paged, concurrent LISTs whose items stream to one writer with bounded memory.

Each unit of work is one LIST (a resource type, in one namespace or across
all), paged with ``limit=500`` and continue tokens. A pool of worker threads
runs several units at once; each page becomes a ``Batch`` of ready-made tar
records (both copies of every item), which goes through a queue bounded in
bytes to the single thread that gzips them into the store. However large the
cluster, memory holds a few pages per worker plus the queue's budget.

Workers never call back into the caller: they only put events on the queue
(``Batch``, ``UnitDone``, ``Fatal``), which the caller's thread reads, so that
progress and log callbacks (database writes) happen on the caller's thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backups.engine.filters import EXCLUDE_LABEL, NamespaceFilter
from backups.engine.kube.api import ApiError, Kube
from backups.engine.kube.discovery import ResourceType
from backups.engine.kube.pages import decode_page, type_prefix, with_type
from backups.engine.velero.archive import ItemRecords
from backups.engine.volumes.objects import OPERATION_LABEL
from backups.engine.volumes.velero_info import ArchivedVolume, archived_volume

PAGE_SIZE = 500
WORKERS = 8
QUEUE_BYTES = 32 * 1024 * 1024


@dataclass(eq=False)
class Unit:
    """One paged LIST and what to keep of it."""

    rtype: ResourceType
    namespace: str | None = None  # list in this namespace only
    selector: str = ""  # labelSelector for the server
    ns_filter: NamespaceFilter | None = None  # for lists across namespaces
    keep_names: frozenset[str] | None = None  # only these names
    keep: Callable[[dict], bool] | None = None  # only objects passing this test
    track: bool = False  # report what related cluster objects need (see Batch.extras)

    @property
    def path(self) -> str:
        return self.rtype.list_path(self.namespace)

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.rtype.group_resource}{where}"


@dataclass(eq=False)
class Batch:
    unit: Unit
    records: bytes
    names: list[str]
    estimate: int  # change to the estimated total (items listed minus dropped)
    namespaces: set[str] = field(default_factory=set)
    extras: list[str] = field(default_factory=list)
    volumes: list[ArchivedVolume] = field(default_factory=list)  # PVs written (volumeinfo)
    items: ItemRecords | None = None  # where each item's records start, for the index

    @property
    def count(self) -> int:
        return len(self.names)


@dataclass(eq=False)
class UnitDone:
    unit: Unit
    count: int
    error: ApiError | None = None


@dataclass(eq=False)
class Fatal:
    exc: BaseException


class Cancelled(Exception):
    pass


class ByteQueue:
    """A FIFO bounded by the bytes it holds (one oversized entry is always let in)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: deque = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item, size: int = 0) -> None:
        with self._cond:
            while size and self._bytes and self._bytes + size > self.max_bytes:
                if self._closed:
                    raise Cancelled
                self._cond.wait(0.5)
            if self._closed:
                raise Cancelled
            self._items.append((item, size))
            self._bytes += size
            self._cond.notify_all()

    def get(self, timeout: float):
        """The next item, or None after ``timeout`` seconds without one."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
                if not self._items:
                    return None
            item, size = self._items.popleft()
            self._bytes -= size
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()


class Collector:
    """Runs units on a thread pool; ``events()`` yields what they produce."""

    def __init__(
        self,
        kube: Kube,
        *,
        mtime: int,
        workers: int = WORKERS,
        rewrites: dict[str, Callable[[str, str, dict], dict]] | None = None,
    ):
        self.kube = kube
        self.mtime = mtime
        # group-resource -> f(namespace, name, object) -> object as it goes into the
        # archive (a claim gets its snapshot's name, as Velero writes it)
        self.rewrites = rewrites or {}
        self.queue = ByteQueue(QUEUE_BYTES)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backup-list")
        self._stop = threading.Event()
        self._pending = 0

    def submit(self, units: list[Unit]) -> None:
        for unit in units:
            self._pending += 1
            self._pool.submit(self._run, unit)

    def events(self, tick: float = 0.25) -> Iterator[Batch | UnitDone | Fatal | None]:
        """Events until every submitted unit is done; None every ``tick`` seconds
        without one, so the caller can report progress."""
        while self._pending:
            event = self.queue.get(tick)
            if isinstance(event, UnitDone):
                self._pending -= 1
            yield event

    def cancel(self) -> None:
        """Stop: workers quit at their next page; nothing more is queued."""
        self._stop.set()
        self.queue.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pending = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # Workers --------------------------------------------------------------------------

    def _run(self, unit: Unit) -> None:
        counted = [0]
        try:
            self._list(unit, counted)
        except Cancelled:
            return
        except ApiError as exc:
            self._put(UnitDone(unit, counted[0], exc))
            return
        except BaseException as exc:  # ClusterUnreachable, or a bug: the backup stops
            self._put(Fatal(exc))
            return
        self._put(UnitDone(unit, counted[0]))

    def _put(self, event, size: int = 0) -> None:
        with contextlib.suppress(Cancelled):
            self.queue.put(event, size)

    def _list(self, unit: Unit, counted: list[int]) -> None:
        token = ""
        first = True
        remaining_known = False
        prefix = type_prefix(unit.rtype.api_version, unit.rtype.kind)
        while True:
            if self._stop.is_set():
                raise Cancelled
            query = {"limit": PAGE_SIZE}
            if unit.selector:
                query["labelSelector"] = unit.selector
            if token:
                query["continue"] = token
            page = decode_page(self.kube.get(unit.path, query))
            listed = len(page.items)
            if first:
                remaining_known = page.remaining is not None or not page.continue_token
                estimate = listed + (page.remaining or 0)
                first = False
            else:
                estimate = 0 if remaining_known else listed
            batch = self._batch(unit, page.items, prefix)
            batch.estimate = estimate - (listed - batch.count)
            counted[0] += batch.count
            self.queue.put(batch, len(batch.records) or 1)
            token = page.continue_token
            if not token:
                return

    def _batch(self, unit: Unit, entries, prefix: bytes) -> Batch:
        rt = unit.rtype
        gr, namespaced = rt.group_resource, rt.namespaced
        made = ItemRecords(gr, rt.version, self.mtime)
        add = made.add
        ns_filter, keep_names, keep, track = unit.ns_filter, unit.keep_names, unit.keep, unit.track
        rewrite = self.rewrites.get(gr)
        records: list[bytes] = []
        names: list[str] = []
        namespaces: set[str] = set()
        extras: list[str] = []
        volumes: list[ArchivedVolume] = []
        for entry in entries:
            if entry.deleting:
                continue
            labels = entry.labels
            if labels and (labels.get(EXCLUDE_LABEL) == "true" or OPERATION_LABEL in labels):
                continue  # excluded, or a temporary object of the console's own jobs
            ns = entry.namespace if namespaced else ""
            if ns and ns_filter is not None and not ns_filter.allows(ns):
                continue
            if keep_names is not None and entry.name not in keep_names:
                continue
            full = None
            if keep is not None:
                full = json.loads(entry.raw)
                if not keep(full):
                    continue
            data = with_type(entry, prefix)
            if rewrite is not None:
                data = json.dumps(
                    rewrite(ns, entry.name, json.loads(data)), separators=(",", ":")
                ).encode()
            add(records, ns, entry.name, data)
            if ns:
                names.append(f"{ns}/{entry.name}")
                namespaces.add(ns)
            else:
                names.append(entry.name)
            if track:
                extras.extend(related_keys(gr, entry, full))
            if gr == "persistentvolumes":
                volumes.append(archived_volume(full or json.loads(entry.raw)))
        return Batch(unit, b"".join(records), names, 0, namespaces, extras, volumes, made)


def related_keys(group_resource: str, entry, full: dict | None) -> list[str]:
    """What an object brings along when cluster resources are ``auto`` with a
    namespace filter: a claim its bound volume, a service account the cluster
    role bindings naming it, a cluster role binding its cluster role."""
    if group_resource == "persistentvolumeclaims":
        full = full or json.loads(entry.raw)
        volume = (full.get("spec") or {}).get("volumeName")
        return [volume] if volume else []
    if group_resource == "serviceaccounts":
        return [f"{entry.namespace}/{entry.name}"]
    if group_resource == "clusterrolebindings.rbac.authorization.k8s.io":
        full = full or json.loads(entry.raw)
        ref = full.get("roleRef") or {}
        return [ref["name"]] if ref.get("kind") == "ClusterRole" and ref.get("name") else []
    return []


def binds_service_account(accounts: set[str]) -> Callable[[dict], bool]:
    """A test for cluster role bindings that name one of ``accounts`` (``ns/name``)."""

    def test(binding: dict) -> bool:
        return any(
            s.get("kind") == "ServiceAccount"
            and f"{s.get('namespace', '')}/{s.get('name', '')}" in accounts
            for s in binding.get("subjects") or ()
        )

    return test
