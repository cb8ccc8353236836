"""The archive's index: reading one item by reading only the gzip member that holds it.

The console writes its archive as a series of gzip members (``archive.py``) and, beside
it, ``<backup>-palette-index.json.gz`` (``Layout.backup_file(name, "archive-index")``)::

    {"format": 1,
     "archive": {"size": <compressed bytes>, "sha256": "..."},
     "members": [[offset, length, tar offset, tar length], ...],
     "types": {"apps/v1/Deployment": "deployments.apps", ...},
     "items": {"apps/v1/Deployment": {"shop/web": <tar offset of its records>, ...}}}

``members`` are in order: member i is bytes ``offset .. offset+length`` of the object,
and unpacks on its own to tar bytes ``tar offset .. tar offset+tar length``. An item's
tar offset is where its first record (the unversioned copy, or a PAX header before it)
begins. Velero ignores the file; archives without one (Velero's, or older ones) are read
whole, as before.

The index and the archive come from a bucket: nothing in them is trusted. A member that
does not unpack to exactly its tar length (the gzip trailer's CRC checked), an offset
outside its member, or an entry at another path than the item's all make ``read_item``
give up with ``IndexMismatch``, and the caller reads the archive whole instead.
"""

from __future__ import annotations

import bisect
import functools
import io
import zlib

import msgspec

from backups.engine.storage.base import NotFound, Provider
from backups.engine.storage.layout import Layout
from backups.engine.velero.archive import INDEX_FORMAT, item_path, new_gzip
from backups.engine.velero.reader import ArchiveError, read_json_gz, tar_files

# A member larger than this (unpacked) is not one the console wrote: read the archive.
MAX_MEMBER = 64 * 1024 * 1024


class IndexMismatch(ArchiveError):
    """The index does not describe the archive beside it (a stale or crafted index)."""


class ArchiveIndex(msgspec.Struct, dict=True):
    format: int
    members: list[tuple[int, int, int, int]]
    types: dict[str, str]
    items: dict[str, dict[str, int]]
    archive: dict[str, int | str] = {}

    @functools.cached_property
    def _starts(self) -> list[int]:
        """Each member's tar offset, in order: made once per loaded index, not per lookup."""
        return [member[2] for member in self.members]

    def _find(self, type_name: str, key: str) -> tuple[int, int] | None:
        """(the member's number, the item's offset inside its unpacked tar) or None."""
        offset = (self.items.get(type_name) or {}).get(key)
        if offset is None or not self.members:
            return None
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return None
        inside = offset - self.members[i][2]
        if not 0 <= inside < self.members[i][3]:
            return None
        return i, inside

    def locate(self, type_name: str, key: str) -> tuple[tuple[int, int, int, int], int] | None:
        """(the member, the item's offset inside its unpacked tar) or None."""
        found = self._find(type_name, key)
        return None if found is None else (self.members[found[0]], found[1])

    def member_number(self, type_name: str, key: str) -> int | None:
        """The number of the member that holds the item, or None."""
        found = self._find(type_name, key)
        return None if found is None else found[0]


def encode(document: dict) -> bytes:
    """The index file's bytes: compact JSON, gzipped fast (it has a line per item)."""
    gzip = new_gzip()
    return gzip.compress(msgspec.json.encode(document)) + gzip.flush()


def encode_writer(writer) -> bytes:
    """``encode(writer.index())`` (an ``ArchiveWriter``), made one type at a time: memory
    holds one type's items as a dict, not every item of the backup."""
    gzip = new_gzip()
    head = msgspec.json.encode(writer.index(items=False))
    out = [gzip.compress(head[:-1] + b',"items":{')]
    for n, type_name in enumerate(writer.item_types()):
        part = msgspec.json.encode(type_name) + b":"
        part += msgspec.json.encode(writer.type_items(type_name))
        out.append(gzip.compress(b"," + part if n else part))
    out.append(gzip.compress(b"}}") + gzip.flush())
    return b"".join(out)


def read_index(provider: Provider, layout: Layout, name: str) -> ArchiveIndex | None:
    """The backup's index, or None when it has none or it is not one (then the archive
    is read whole). Raises StorageError for a store failure other than a missing file."""
    try:
        index = read_json_gz(provider, layout.backup_file(name, "archive-index"), ArchiveIndex)
    except NotFound:
        return None
    except ArchiveError:
        return None
    return index if index.format == INDEX_FORMAT else None


def matches(index: ArchiveIndex | None, sha256: str) -> ArchiveIndex | None:
    """``index`` when it describes the archive of checksum ``sha256`` (the one the console
    recorded for the backup), None otherwise: a stale or foreign index is not used."""
    if index is None or not sha256:
        return index
    recorded = str(index.archive.get("sha256") or "").strip().lower()
    return index if recorded == sha256.strip().lower() else None


def unpack_member(
    provider: Provider, key: str, member: tuple[int, int, int, int], raw_to=None
) -> bytes:
    """Member ``member`` of the archive at ``key``, read by range and unpacked whole
    (its CRC checked); its gzip bytes, once checked, also written to ``raw_to`` when
    given. Raises IndexMismatch, or StorageError from the store."""
    offset, length, _tar_offset, tar_length = member
    if min(member) < 0 or tar_length > MAX_MEMBER or length > MAX_MEMBER or not length:
        raise IndexMismatch("The archive's index names a member the console did not write.")
    raw = provider.read_range(key, offset, length)
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflate.decompress(raw, tar_length + 1)
    except zlib.error:
        raise IndexMismatch("The archive's index does not match the archive.") from None
    if len(raw) != length or not inflate.eof or inflate.unused_data or len(data) != tar_length:
        raise IndexMismatch("The archive's index does not match the archive.")
    if raw_to is not None:
        raw_to.write(raw)
    return data


def read_item(
    provider: Provider, layout: Layout, name: str, index: ArchiveIndex,
    type_name: str, namespace: str, item: str, max_entry: int,
) -> bytes | None:  # fmt: skip
    """The JSON bytes of one item through the index (its unversioned copy), or None when
    the index does not list it. Raises IndexMismatch or StorageError."""
    key = f"{namespace}/{item}" if namespace else item
    found = index.locate(type_name, key)
    group_resource = index.types.get(type_name)
    if found is None or not group_resource:
        return None
    member, inside = found
    data = unpack_member(provider, layout.backup_file(name, "archive"), member)
    entries = tar_files(io.BytesIO(memoryview(data)[inside:]), max_entry)
    try:
        path, body = next(entries)
    except (StopIteration, ArchiveError):
        raise IndexMismatch("The archive's index does not match the archive.") from None
    if path != item_path(group_resource, namespace or None, item):
        raise IndexMismatch("The archive's index does not match the archive.")
    return body
