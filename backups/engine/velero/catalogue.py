"""A backup's items as the content browser pages through them, kept per process.

The browser shows a page of items (type, then namespace, then name), filtered by
kind, namespace and name. ``load`` reads what lists them once: the archive's index
(``index.py``) when the backup has one that matches its checksum, else its resource
list (Velero's backups, older ones). Each type's keys (``ns/name`` or ``name``) are
sorted once, so that a page is a slice, a namespace a bisection, and only a name
filter looks at every key of a type.

What was loaded stays in a small per-process cache (``CACHE_ENTRIES`` backups, at most
``CACHE_ITEMS`` items together), under the caller's key. The caller makes the key of
everything that identifies the backup (the console: its row, location, prefix, name and
archive checksum), and only after it checked that the person may see that backup, so
that one backup's entry is never another's.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from backups.engine.storage.base import Provider
from backups.engine.storage.layout import Layout
from backups.engine.velero import index as archive_index
from backups.engine.velero import reader

PAGE_SIZE = 200
CACHE_ENTRIES = 4
CACHE_ITEMS = 700_000  # about 100 MiB of keys and offsets


@dataclass
class Page:
    """One page of the listing, in the rows the template shows."""

    rows: list[dict]  # {"type", "count" (matches of the type), "namespaces": [(ns, [names])]}
    total: int  # items matching the filter
    number: int  # 1-based
    pages: int
    first: int  # 1-based position of the page's first item (0 when empty)
    last: int


@dataclass
class Catalogue:
    """Resource-list type -> its keys, sorted; and the archive's index, if any."""

    types: dict[str, list[str]]
    index: archive_index.ArchiveIndex | None = None
    size: int = field(init=False)

    def __post_init__(self):
        self.size = sum(len(keys) for keys in self.types.values())

    @classmethod
    def of_index(cls, index: archive_index.ArchiveIndex) -> Catalogue:
        return cls({t: sorted(keys) for t, keys in sorted(index.items.items())}, index)

    @classmethod
    def of_listing(cls, listing: dict[str, list[str]]) -> Catalogue:
        return cls({t: sorted(set(keys)) for t, keys in sorted(listing.items())})

    def kinds(self) -> list[tuple[str, int]]:
        """(type, item count) of every type, for the kind filter."""
        return [(t, len(keys)) for t, keys in self.types.items()]

    def _matches(self, keys: list[str], namespace: str, name: str) -> list[str] | range:
        """The keys (or the range of positions in ``keys``) that pass the filter."""
        lo, hi = 0, len(keys)
        if namespace:
            lo = bisect.bisect_left(keys, namespace + "/")
            hi = bisect.bisect_left(keys, namespace + "0")  # "0" follows "/"
        if not name:
            return range(lo, hi)
        return [k for k in keys[lo:hi] if name in k.rpartition("/")[2]]

    def page(
        self, kind: str = "", namespace: str = "", name: str = "", number: int = 1,
        size: int = PAGE_SIZE,
    ) -> Page:  # fmt: skip
        """Page ``number`` (past the last: the last) of the items of type ``kind``
        (``apps/v1/Deployment``, or a bare kind, ``Deployment``) in ``namespace`` whose
        name holds ``name``; any of them empty: all."""
        chosen = []
        for type_name, keys in self.types.items():
            if kind and kind not in (type_name, type_name.rpartition("/")[2]):
                continue
            if namespace and keys and "/" not in keys[0]:
                continue  # a cluster-scoped type has no item in a namespace
            found = self._matches(keys, namespace, name)
            if len(found):
                chosen.append((type_name, keys, found))
        total = sum(len(found) for _t, _k, found in chosen)
        pages = max(1, -(-total // size))
        number = min(max(number, 1), pages)
        start, end = (number - 1) * size, min(number * size, total)
        rows, seen = [], 0
        for type_name, keys, found in chosen:
            if seen + len(found) > start and seen < end:
                part = found[max(start - seen, 0) : end - seen]
                if isinstance(part, range):
                    part = keys[part.start : part.stop]
                rows.append(_row(type_name, len(found), part))
            seen += len(found)
        return Page(rows, total, number, pages, start + 1 if total else 0, end)


def _row(type_name: str, count: int, keys: list[str]) -> dict:
    by_namespace: dict[str, list[str]] = {}
    for key in keys:
        namespace, _, item = key.rpartition("/")
        by_namespace.setdefault(namespace, []).append(item)
    return {"type": type_name, "count": count, "namespaces": list(by_namespace.items())}


def read(provider: Provider, layout: Layout, name: str, sha256: str = "") -> Catalogue:
    """The backup's catalogue from the store: its index when it has one that describes
    the archive of ``sha256`` (when given), else its resource list. Raises StorageError
    (NotFound without a resource list) or ArchiveError."""
    found = archive_index.matches(archive_index.read_index(provider, layout, name), sha256)
    if found is not None:
        return Catalogue.of_index(found)
    return Catalogue.of_listing(reader.resource_list(provider, layout, name))


# --- the per-process cache ---------------------------------------------------------------

_cache: OrderedDict[Hashable, Catalogue] = OrderedDict()
_lock = threading.Lock()


def cached(key: Hashable, make: Callable[[], Catalogue]) -> Catalogue:
    """The catalogue cached under ``key``, made (outside the lock) when absent. The least
    recently used go first past CACHE_ENTRIES or CACHE_ITEMS; the newest always stays."""
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    made = make()
    with _lock:
        _cache[key] = made
        _cache.move_to_end(key)
        while len(_cache) > 1 and (
            len(_cache) > CACHE_ENTRIES or sum(c.size for c in _cache.values()) > CACHE_ITEMS
        ):
            _cache.popitem(last=False)
    return made


def load(
    provider: Provider, layout: Layout, name: str, key: Hashable, sha256: str = ""
) -> Catalogue:
    """``read`` through the cache, under ``key`` (see the module's docstring)."""
    return cached(key, lambda: read(provider, layout, name, sha256))


def forget() -> None:
    """Empty the cache (tests; a process that wants its memory back)."""
    with _lock:
        _cache.clear()
