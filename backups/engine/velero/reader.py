"""Reading a stored backup back (the one reader, for pages and restores alike): its
results, its resource list, the namespaces it holds, one item in its archive.

Everything streams from the store: the tar.gz is read in one pass (no temp file,
no seeking), so looking up one item costs one download of the archive at most,
and memory holds one entry at a time. Works on archives Velero wrote as well as
on the console's own. ``iter_files`` reads the tar records itself instead of
through ``tarfile`` (four times faster on an archive of small files) and checks
what makes an archive trustworthy: every header's checksum, and the gzip trailer
(CRC and length), which a truncated or bit-flipped archive fails; any such fault
raises ``ArchiveDamaged``. A restore reads the whole archive with it
(``restore/archive.py``).
"""

from __future__ import annotations

import json
import zlib
from typing import BinaryIO

import msgspec

from backups.engine.storage.base import NotFound, Provider
from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import encrypted_message, is_sealed

CHUNK = 1024 * 1024
OUT_STEP = 4 * CHUNK  # decompressed bytes per step
BLOCK = 512
# An entry larger than this is not a Kubernetes object (at most ~1.5 MiB).
MAX_ENTRY = 64 * 1024 * 1024
PREFERRED = "-preferredversion/"

# What a page will decompress (a bucket is input: a gzip or tar bomb must be refused,
# not fill the memory or the CPU). Real files are far smaller.
MAX_LISTING_BYTES = 64 * 1024 * 1024  # results, resource list: decompressed
MAX_ITEM_BYTES = 16 * 1024 * 1024  # one object shown from the archive
MAX_SCAN_BYTES = 16 * 1024**3  # read through the archive to find one object
MAX_RATIO = 200  # decompressed / compressed, past the first MAX_ITEM_BYTES


class ArchiveError(Exception):
    """The archive cannot be used; ``str()`` is the sentence to show."""


class Unreadable(ArchiveError):
    """A stored file a page will not show: too big, a bomb, or not what Velero writes."""


class ArchiveDamaged(ArchiveError):
    def __init__(self, detail: str):
        super().__init__(f"The archive is damaged: {detail}.")


class _Gunzip:
    """Decompresses a gzip stream (several members allowed) chunk by chunk and
    checks each member's trailer, as ``gzip`` does, with errors as ArchiveDamaged."""

    def __init__(self, fileobj: BinaryIO, max_total: int | None = None, max_ratio=None):
        self.fileobj = fileobj
        self.buffer = bytearray()
        self.pos = 0
        self.eof = False
        self._new_member()
        self.started = False
        self.max_total, self.max_ratio = max_total, max_ratio
        self.read_in = self.given_out = 0
        self.pending = b""

    def _new_member(self) -> None:
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _fill(self, wanted: int) -> None:
        """Decompress until ``wanted`` bytes are buffered, at most OUT_STEP at a time
        (a chunk of a gzip bomb never becomes gigabytes in memory at once)."""
        while len(self.buffer) - self.pos < wanted and not self.eof:
            if self.pos > CHUNK:
                del self.buffer[: self.pos]
                self.pos = 0
            if not self.pending:
                raw = self.fileobj.read(CHUNK)
                if not raw:
                    if not self.inflate.eof:
                        if not self.started:
                            raise ArchiveDamaged("it is empty")
                        raise ArchiveDamaged(
                            "it ends before the end of its gzip stream (truncated)"
                        )
                    self.eof = True
                    return
                if not self.started and is_sealed(raw):
                    raise Unreadable(encrypted_message("The archive"))
                self.started = True
                self.read_in += len(raw)
                self.pending = raw
            if self.inflate.eof:  # a member ended: another follows, or zero padding
                if not self.pending.strip(b"\x00"):
                    self.pending = b""
                    continue
                self._new_member()
            try:
                out = self.inflate.decompress(self.pending, OUT_STEP)
            except zlib.error as exc:
                raise ArchiveDamaged(f"its gzip data is corrupt ({exc})") from None
            self.pending = (
                self.inflate.unused_data if self.inflate.eof else self.inflate.unconsumed_tail
            )
            self.buffer += out
            self.given_out += len(out)
            self._check_limits()

    def _check_limits(self) -> None:
        out = self.given_out
        if self.max_total is not None and out > self.max_total:
            raise Unreadable(f"The archive is larger than {self.max_total // 2**30} GiB unpacked.")
        if self.max_ratio and out > MAX_ITEM_BYTES and out > self.max_ratio * self.read_in:
            raise Unreadable(
                f"The archive unpacks to more than {self.max_ratio} times its size (a gzip bomb?)."
            )

    def read(self, size: int) -> bytes:
        self._fill(size)
        data = bytes(self.buffer[self.pos : self.pos + size])
        self.pos += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so that the gzip trailer (CRC, length) is checked."""
        while not self.eof:
            self.pos = len(self.buffer)
            self._fill(CHUNK)


def _octal(field: bytes) -> int:
    text = field.split(b"\x00", 1)[0].strip()
    if not text:
        return 0
    if field[0] & 0x80:  # GNU base-256 for large numbers
        return int.from_bytes(field[1:], "big")
    return int(text, 8)


def _pax_path(data: bytes) -> str | None:
    path = None
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key == b"path":
            path = value.decode("utf-8", "surrogateescape")
        pos += length
    return path


def iter_files(
    fileobj: BinaryIO, *, max_total: int | None = None, max_ratio=None, max_entry: int = MAX_ENTRY
):
    """(path, data) of every regular file of a tar.gz, checking headers and the trailer.
    ``max_total`` and ``max_ratio`` bound what a page reads through (Unreadable past them)."""
    stream = _Gunzip(fileobj, max_total, max_ratio)
    yield from tar_files(stream, max_entry)
    stream.drain()


def tar_files(stream, max_entry: int = MAX_ENTRY):
    """(path, data) of the regular files of plain tar data read from ``stream`` (anything
    with ``read(size)``), from its current position to the end-of-archive blocks."""
    long_name: str | None = None
    while True:
        header = stream.read(BLOCK)
        if len(header) < BLOCK:
            raise ArchiveDamaged("it ends in the middle of the tar data (truncated)")
        if header == bytes(BLOCK):
            break
        try:
            expected = _octal(header[148:156])
            size = _octal(header[124:136])
        except ValueError:
            raise ArchiveDamaged("a tar header is not valid") from None
        if expected != sum(header[:148]) + 256 + sum(header[156:]):
            raise ArchiveDamaged("a tar header's checksum is wrong")
        kind = header[156:157]
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if size > max_entry and max_entry < MAX_ENTRY:
            raise Unreadable(
                f"An object in the archive is larger than {max_entry // 2**20} MiB; not shown."
            )
        if size > MAX_ENTRY:
            raise ArchiveDamaged(f"an entry claims {size} bytes, more than any Kubernetes object")
        data = stream.read(padded)[:size] if padded else b""
        if len(data) < size:
            raise ArchiveDamaged("it ends in the middle of an entry (truncated)")
        if kind in (b"x", b"L"):
            long_name = (
                _pax_path(data)
                if kind == b"x"
                else data.rstrip(b"\x00").decode("utf-8", "surrogateescape")
            )
            continue
        if kind not in (b"0", b"\x00", b"7"):
            long_name = None
            continue  # directories, links, global headers
        if long_name is not None:
            path = long_name
            long_name = None
        else:
            name = header[:100].split(b"\x00", 1)[0]
            prefix = header[345:500].split(b"\x00", 1)[0] if header[257:262] == b"ustar" else b""
            path = ((prefix + b"/" + name) if prefix else name).decode("utf-8", "surrogateescape")
        yield path, data


class _Section(msgspec.Struct):
    velero: list[str] | None = None
    cluster: list[str] | None = None
    namespaces: dict[str, list[str]] | None = None


RESULTS = dict[str, _Section | None]
RESOURCE_LIST = dict[str, list[str]]


def read_json_gz(provider: Provider, key: str, shape=None, limit: int = MAX_LISTING_BYTES):
    """A small gzipped JSON file, decompressed within ``limit`` bytes and, with ``shape``,
    checked to have it (Unreadable otherwise: the file came from a bucket)."""
    what = key.rsplit("/", 1)[-1]
    with provider.open_read(key) as stream:
        compressed = stream.read(limit + 1)
    if is_sealed(compressed):
        raise Unreadable(encrypted_message(what))
    if len(compressed) > limit:
        raise Unreadable(f"{what} is larger than {limit // 2**20} MiB; not shown")
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        data = inflater.decompress(compressed, limit)
    except zlib.error as exc:
        raise Unreadable(f"{what} is not valid gzip ({exc})") from None
    if inflater.unconsumed_tail:
        raise Unreadable(f"{what} decompresses to more than {limit // 2**20} MiB; not shown")
    try:
        if shape is not None:  # decoded straight into the shape: an index has a line per item
            return msgspec.json.decode(data, type=shape)
        return json.loads(data)
    except msgspec.ValidationError as exc:
        raise Unreadable(f"{what} is not what Velero writes ({exc})") from None
    except ValueError as exc:
        raise Unreadable(f"{what} is not JSON ({exc})") from None


def resource_list(provider: Provider, layout: Layout, name: str) -> dict[str, list[str]]:
    """``"<apiVersion>/<Kind>"`` -> ``ns/name`` or ``name``. Raises NotFound (a
    StorageError) when the backup has no resource list."""
    return read_json_gz(provider, layout.backup_file(name, "resource-list"), RESOURCE_LIST)


def results(provider: Provider, layout: Layout, name: str) -> dict:
    """``{"errors": [(scope, message)], "warnings": [...]}`` flattened for a page."""
    raw = read_json_gz(provider, layout.backup_file(name, "results"), RESULTS)
    flat = {}
    for kind in ("errors", "warnings"):
        section = raw.get(kind) or _Section()
        rows = [("velero", m) for m in section.velero or []]
        rows += [("cluster", m) for m in section.cluster or []]
        for namespace, messages in sorted((section.namespaces or {}).items()):
            rows += [(namespace, m) for m in messages]
        flat[kind] = rows
    return flat


def contents(provider: Provider, layout: Layout, name: str) -> list[dict]:
    """The resource list as rows: type, then namespaces with their items."""
    rows = []
    for type_name, items in sorted(resource_list(provider, layout, name).items()):
        by_namespace: dict[str, list[str]] = {}
        for item in items:
            namespace, _, item_name = item.rpartition("/")
            by_namespace.setdefault(namespace, []).append(item_name)
        rows.append(
            {"type": type_name, "count": len(items), "namespaces": sorted(by_namespace.items())}
        )
    return rows


def namespaces(provider: Provider, layout: Layout, name: str) -> list[str]:
    """The namespaces a backup holds, from its resource list (no archive download);
    from the archive's paths when the list is missing. Raises StorageError."""
    try:
        listing = resource_list(provider, layout, name)
    except NotFound:
        found = set()
        with provider.open_read(layout.backup_file(name, "archive")) as stream:
            for path, _data in iter_files(stream):
                parts = path.split("/")
                if len(parts) >= 5 and parts[0] == "resources" and parts[-3] == "namespaces":
                    found.add(parts[-2])
                elif len(parts) == 4 and parts[1] == "namespaces" and parts[2] == "cluster":
                    found.add(parts[3].removesuffix(".json"))
        return sorted(found)
    found = set(listing.get("v1/Namespace") or ())
    for key, entries in listing.items():
        if key != "v1/Namespace":
            found.update(entry.split("/", 1)[0] for entry in entries if "/" in entry)
    return sorted(found)


_READ_INDEX = object()  # find_item: read the index from the store


def find_item(
    provider: Provider, layout: Layout, name: str, type_name: str, namespace: str, item: str,
    archive_index=_READ_INDEX,
) -> dict | None:  # fmt: skip
    """One object from the archive, by its resource-list type (``apps/v1/Deployment``),
    namespace ('' when cluster-scoped) and name; None when the archive has none.

    Through the archive's index (``index.py``) when it has one: one ranged read of the
    member that holds the item. Otherwise (Velero's archives, older ones, an index that
    does not match) the archive is read through: the unversioned path is what Velero
    restores from; an archive that only has the ``<version>-preferredversion`` copy is
    read from there. Stops at the first match. Raises StorageError when the archive
    cannot be read. ``archive_index``: the index already loaded (``catalogue.load``), or
    None for a backup known to have none.
    """
    from backups.engine.velero import index

    found = archive_index
    if found is _READ_INDEX:
        found = index.read_index(provider, layout, name)
    if found is not None:
        try:
            data = index.read_item(
                provider, layout, name, found, type_name, namespace, item, MAX_ITEM_BYTES
            )
        except index.IndexMismatch:
            data = None
        if data is not None:
            obj = _item_object(data, type_name, f"{type_name} {namespace}/{item}")
            if obj is not None:
                return obj
    return _scan_for_item(provider, layout, name, type_name, namespace, item)


def _item_object(data: bytes, type_name: str, path: str) -> dict | None:
    """The object in ``data`` when it is of ``type_name``; Unreadable when it is no object."""
    api_version, _, kind = type_name.rpartition("/")
    if len(data) > MAX_ITEM_BYTES:
        raise Unreadable(f"{path} is larger than {MAX_ITEM_BYTES // 2**20} MiB; not shown")
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise Unreadable(f"An object in the archive is not JSON ({exc}).") from None
    if not isinstance(obj, dict):
        raise Unreadable(f"{path} is not a Kubernetes object.")
    if obj.get("kind") != kind or obj.get("apiVersion") != api_version:
        return None
    return obj


def _scan_for_item(
    provider: Provider, layout: Layout, name: str, type_name: str, namespace: str, item: str
) -> dict | None:
    suffix = (f"/namespaces/{namespace}/" if namespace else "/cluster/") + f"{item}.json"
    fallback = None
    with provider.open_read(layout.backup_file(name, "archive")) as stream:
        for path, data in iter_files(
            stream, max_total=MAX_SCAN_BYTES, max_ratio=MAX_RATIO, max_entry=MAX_ITEM_BYTES
        ):
            if not (path.startswith("resources/") and path.endswith(suffix)):
                continue
            preferred = PREFERRED in path
            if preferred and fallback is not None:
                continue
            obj = _item_object(data, type_name, path)
            if obj is None:
                continue
            if not preferred:
                return obj
            fallback = obj
    return fallback
