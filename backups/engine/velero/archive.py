"""The resources archive: a tar of JSON files, gzipped, streamed into a store.

Layout: ``metadata/version`` first, then every item twice,
at ``resources/<group-resource>/namespaces/<ns>/<name>.json`` (or
``.../cluster/<name>.json``) and under ``<version>-preferredversion/``.

Tar headers are built here rather than with ``tarfile``: the engine writes two
entries per object, and a USTAR header is a fixed 512-byte record that costs
microseconds to fill. Paths longer than USTAR can hold fall back to
``tarfile``'s PAX headers, which Velero (Go's archive/tar) reads.

Compression: gzip, level 1 (see GZIP_LEVEL). When ``isal`` (Intel's ISA-L) is
installed it makes the same standard gzip stream several times faster than
zlib; otherwise the standard library's zlib does.

Members and the index: the gzip stream is a series of gzip members, a new one
started after about MEMBER_BYTES of tar data, always at an item's boundary.
gzip, ``tarfile`` and Velero (Go's gzip reader) read concatenated members as one
stream, so the archive is an ordinary tar.gz; but one member also unpacks on its
own. ``ArchiveWriter.index()`` says where each member starts in the object and in
the tar, and at which tar offset each item's records begin, so that a reader
(``velero/index.py``) fetches one item by reading only its member.
"""

from __future__ import annotations

import bisect
import hashlib
import tarfile
import zlib
from array import array

try:  # optional speed-up: the same gzip format, several times faster
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _fast_zlib = None

FORMAT_VERSION = "1.1.0"
# Level 1: on the 20,000-object benchmark, level 6 made the whole backup slower
# for an archive about 40% smaller; both copies of an item sit next to each
# other, so even level 1 stores the second copy as one back-reference, and an
# archive of Kubernetes objects is small next to the time spent making it.
GZIP_LEVEL = 1
BLOCK = 512
# Tar bytes per gzip member (before compression): reading one item reads about this
# much of the archive (a fifth to a tenth of it compressed). Smaller members would
# cost more gzip headers and resets of the compressor's window.
MEMBER_BYTES = 1024 * 1024
INDEX_FORMAT = 1
_ZERO_BLOCK = bytes(BLOCK)
_MODE = b"0000755\x00"  # what Velero writes
_IDS = b"0000000\x00"


def item_path(
    group_resource: str, namespace: str | None, name: str, version: str | None = None
) -> str:
    """Where an item goes in the archive; ``version`` gives the preferred-version copy."""
    folder = f"resources/{group_resource}"
    if version:
        folder += f"/{version}-preferredversion"
    if namespace:
        return f"{folder}/namespaces/{namespace}/{name}.json"
    return f"{folder}/cluster/{name}.json"


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) for USTAR, or None when the path does not fit."""
    if len(name) <= 100:
        return b"", name
    if len(name) > 256:
        return None
    # The last '/' that leaves at most 100 bytes after it and 155 before it.
    for i in range(min(len(name) - 1, 155), 0, -1):
        if name[i : i + 1] == b"/" and len(name) - i - 1 <= 100:
            return name[:i], name[i + 1 :]
    return None


# The fixed parts of a USTAR header for a regular file with no prefix: mode, uid,
# gid (after the 100-byte name), then type '0', an empty link name, the magic,
# and empty owner names, device numbers and prefix.
_IDS_PART = _MODE + _IDS + _IDS
_TAIL_PART = (b"0" + bytes(100) + b"ustar\x0000").ljust(BLOCK - 100 - 24 - 12 - 12 - 8, b"\x00")
_FIXED_SUM = sum(_IDS_PART) + sum(_TAIL_PART) + 8 * 0x20  # the checksum field counts as spaces
_NUL = bytes(BLOCK)


def tar_header(path: str, size: int, mtime: int) -> bytes:
    """One header record for a regular file."""
    raw = path.encode()
    if len(raw) <= 100 and raw.isascii():
        # The common case, from fixed parts: about four times faster than filling
        # a bytearray, which matters at two headers per object.
        size_field = b"%011o\x00" % size
        mtime_field = b"%011o\x00" % mtime
        checksum = _FIXED_SUM + sum(raw) + sum(size_field) + sum(mtime_field)
        return b"".join(
            (
                raw,
                _NUL[: 100 - len(raw)],
                _IDS_PART,
                size_field,
                mtime_field,
                b"%06o\x00 " % checksum,
                _TAIL_PART,
            )
        )
    split = _split_ustar(raw) if raw.isascii() else None
    if split is None:
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode, info.type = size, mtime, 0o755, tarfile.REGTYPE
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    prefix, name = split
    header = bytearray(BLOCK)
    header[0 : len(name)] = name
    header[100:124] = _IDS_PART
    header[124:136] = b"%011o\x00" % size
    header[136:148] = b"%011o\x00" % mtime
    header[148:156] = b"        "
    header[156] = 0x30  # '0': regular file
    header[257:265] = b"ustar\x0000"
    header[345 : 345 + len(prefix)] = prefix
    header[148:156] = b"%06o\x00 " % sum(header)
    return bytes(header)


def tar_entry(path: str, data: bytes, mtime: int) -> bytes:
    """Header, data and padding to the next 512-byte boundary."""
    pad = -len(data) % BLOCK
    return b"".join((tar_header(path, len(data), mtime), data, _ZERO_BLOCK[:pad]))


class ItemRecords:
    """The tar records of items of one resource type, each at its two paths.

    Equal to ``tar_entry`` at ``item_path(...)`` and at ``item_path(..., version)``,
    but cheaper at two records per object: both headers share the size, mtime and
    checksum (the paths differ by a known folder), and the pieces go into the
    caller's list, joined once per page rather than once per record.
    """

    def __init__(self, group_resource: str, version: str, mtime: int):
        self.group_resource, self.version, self.mtime = group_resource, version, mtime
        # where each added item's records start, from the first add (for the index)
        self.offsets: list[int] = []
        self.size = 0
        self._plain = f"resources/{group_resource}/".encode()
        self._versioned = f"resources/{group_resource}/{version}-preferredversion/".encode()
        self._extra = sum(self._versioned) - sum(self._plain)
        self._mtime_field = b"%011o\x00" % mtime
        self._base = _FIXED_SUM + sum(self._mtime_field)

    def add(self, out: list, namespace: str, name: str, data: bytes) -> None:
        rel = f"namespaces/{namespace}/{name}.json" if namespace else f"cluster/{name}.json"
        raw = rel.encode()
        plain, versioned = self._plain + raw, self._versioned + raw
        self.offsets.append(self.size)
        if len(versioned) > 100 or not raw.isascii():
            first = tar_entry(item_path(self.group_resource, namespace, name), data, self.mtime)
            second = tar_entry(
                item_path(self.group_resource, namespace, name, self.version), data, self.mtime
            )
            out += (first, second)
            self.size += len(first) + len(second)
            return
        size = len(data)
        size_field = b"%011o\x00" % size
        checksum = self._base + sum(size_field) + sum(plain)
        middle = _IDS_PART + size_field + self._mtime_field
        pad = _ZERO_BLOCK[: -size % BLOCK]
        self.size += 2 * (BLOCK + size + len(pad))
        out += (
            plain, _NUL[: 100 - len(plain)], middle, b"%06o\x00 " % checksum, _TAIL_PART,
            data, pad,
            versioned, _NUL[: 100 - len(versioned)], middle,
            b"%06o\x00 " % (checksum + self._extra), _TAIL_PART, data, pad,
        )  # fmt: skip


def new_gzip(level: int = GZIP_LEVEL):
    """A compressor object that writes a gzip stream (header and trailer included)."""
    if _fast_zlib is not None:
        # ISA-L has levels 0-3; its 1 compresses better than zlib's 1.
        return _fast_zlib.compressobj(min(level, 3), _fast_zlib.DEFLATED, 31)
    return zlib.compressobj(level, zlib.DEFLATED, 31)


def gzip_implementation() -> str:
    return "isal" if _fast_zlib is not None else "zlib"


class ArchiveWriter:
    """Gzip a stream of tar records into ``sink`` (a provider Writer), counting the
    compressed bytes and their sha256 on the way, in members of about
    ``member_bytes`` of tar data each, and indexing the items it is told about."""

    def __init__(
        self, sink, level: int = GZIP_LEVEL, mtime: int = 0, member_bytes: int = MEMBER_BYTES
    ):
        self.sink = sink
        self.mtime = mtime
        self.size = 0
        self.level = level
        self.member_bytes = member_bytes
        self._sha = hashlib.sha256()
        self._gzip = new_gzip(level)
        self._closed = False
        self.tar_size = 0  # tar bytes given so far
        self._member = (0, 0)  # (compressed offset, tar offset) where this member began
        self.members: list[list[int]] = []  # [offset, length, tar offset, tar length]
        self.types: dict[str, str] = {}  # resource-list type -> group-resource
        # type -> its items' keys (NUL-separated) and tar offsets, in the order written:
        # a few bytes an item, not a string and an int (the index of a 300,000-object
        # backup would otherwise hold tens of MiB until the end)
        self._keys: dict[str, bytearray] = {}
        self._offsets: dict[str, array] = {}

    def _out(self, chunk: bytes) -> None:
        if chunk:
            self._sha.update(chunk)
            self.size += len(chunk)
            self.sink.write(chunk)

    def _compress(self, records) -> None:
        self._out(self._gzip.compress(records))
        self.tar_size += len(records)

    def _end_member(self) -> None:
        """Close the gzip member (its trailer checks it on its own) and start the next."""
        self._out(self._gzip.flush())
        offset, tar_offset = self._member
        self.members.append([offset, self.size - offset, tar_offset, self.tar_size - tar_offset])
        self._member = (self.size, self.tar_size)
        self._gzip = new_gzip(self.level)

    def write_records(self, records: bytes) -> None:
        """Bytes that are already whole tar records (from ``tar_entry``), not indexed."""
        self._write(records, ())

    def write_items(self, type_name: str, items: ItemRecords, names, records: bytes) -> None:
        """The records ``items`` (an ``ItemRecords``) made, joined in ``records``, of the
        resource-list entries ``names`` (``ns/name`` or ``name``, in the order added) of
        type ``type_name`` (``apps/v1/Deployment``): written and indexed. A member may
        end between two items, never inside one."""
        offsets = items.offsets
        if len(names) != len(offsets):
            raise ValueError(f"{len(names)} names for {len(offsets)} items")
        self.types[type_name] = items.group_resource
        if names:
            keys = self._keys.setdefault(type_name, bytearray())
            keys += "\0".join(names).encode("utf-8", "surrogateescape") + b"\0"
            base = self.tar_size
            self._offsets.setdefault(type_name, array("q")).extend(base + o for o in offsets)
        self._write(records, offsets)

    def item_types(self) -> list[str]:
        return list(self._keys)

    def type_items(self, type_name: str) -> dict[str, int]:
        """Item key -> tar offset of one type (the last write of a key wins)."""
        keys = bytes(self._keys.get(type_name) or b"").decode("utf-8", "surrogateescape")
        return dict(zip(keys.split("\0")[:-1], self._offsets.get(type_name) or (), strict=True))

    @property
    def items(self) -> dict[str, dict[str, int]]:
        """type -> item key -> tar offset."""
        return {type_name: self.type_items(type_name) for type_name in self._keys}

    def _write(self, records: bytes, offsets) -> None:
        view, start = memoryview(records), 0
        while offsets:
            room = self._member[1] + self.member_bytes - self.tar_size
            if len(records) - start <= room:
                break
            # the last item boundary within the member's room, else the next one
            cut = max(bisect.bisect_right(offsets, start + room) - 1, 0)
            if offsets[cut] <= start:
                cut += 1
            if cut >= len(offsets):
                break
            self._compress(view[start : offsets[cut]])
            start = offsets[cut]
            self._end_member()
        self._compress(view[start:])
        if self.tar_size - self._member[1] >= self.member_bytes:
            self._end_member()

    def add_file(self, path: str, data: bytes) -> None:
        self.write_records(tar_entry(path, data, self.mtime))

    def add_version_file(self) -> None:
        self.add_file("metadata/version", (FORMAT_VERSION + "\n").encode())

    def finish(self) -> tuple[int, str]:
        """End the tar (two zero blocks) and the gzip stream; returns (size, sha256).
        The caller then closes the sink to commit the object."""
        if not self._closed:
            self._compress(_ZERO_BLOCK * 2)
            self._end_member()
            self._closed = True
        return self.size, self._sha.hexdigest()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def index(self, items: bool = True) -> dict:
        """The index document (after ``finish``): what ``velero/index.py`` reads; without
        ``items`` for ``index.encode_writer``, which adds them one type at a time."""
        document = {
            "format": INDEX_FORMAT,
            "archive": {"size": self.size, "sha256": self.sha256},
            "members": self.members,
            "types": self.types,
        }
        if items:
            document["items"] = self.items
        return document
