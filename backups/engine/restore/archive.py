"""Reading a backup's archive for a restore: download, verify, index.

``spool(provider, key, expected_sha256)`` copies the archive from the store
into a temporary file (in memory while small), hashing it on the way; a
checksum that differs from the one recorded at backup time stops the restore
before anything touches the cluster.

``read_contents(fileobj)`` then reads the whole tar.gz once and keeps each
item's JSON bytes, keyed by (group-resource, namespace, name). It reads the
tar records itself instead of through ``tarfile`` (four times faster on an
archive of small files) and checks what makes an archive trustworthy: every
header's checksum, and the gzip trailer (CRC and length), which a truncated
or bit-flipped archive fails. Any such fault raises ``ArchiveDamaged``.

Velero writes every item twice: at ``resources/<gr>/namespaces/<ns>/<name>.json``
(``.../cluster/<name>.json``), which is what a restore reads, and under
``<version>-preferredversion/`` (and, with its EnableAPIGroupVersions feature,
``<version>/``) for other versions. The versioned copies are kept only when
they are the only copy, or at another version than the main one: a restore
needs them only when the target cluster does not serve the main copy's version.
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from backups.engine.storage.base import NotFound, Provider, StorageError

CHUNK = 1024 * 1024
BLOCK = 512
# Archives at most this large stay in memory while being restored; larger ones
# go to a temporary file on disk.
IN_MEMORY = 64 * 1024 * 1024
# An entry larger than this is not a Kubernetes object (at most ~1.5 MiB).
MAX_ENTRY = 64 * 1024 * 1024
PREFERRED_SUFFIX = "-preferredversion"


class ArchiveError(Exception):
    """The archive cannot be used; ``str()`` is the sentence to show."""


class ChecksumMismatch(ArchiveError):
    pass


class ArchiveDamaged(ArchiveError):
    def __init__(self, detail: str):
        super().__init__(f"The archive is damaged: {detail}.")


class ArchiveMissing(ArchiveError):
    pass


def spool(provider: Provider, key: str, expected_sha256: str = "") -> tuple[BinaryIO, int, str]:
    """The archive at ``key`` in a seekable temporary file (rewound), its size and sha256.

    Raises ArchiveMissing, ChecksumMismatch, or ArchiveError for a store failure.
    """
    # Handed to the caller, who closes it.
    spooled = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, prefix="palette-restore-")  # noqa: SIM115
    digest = hashlib.sha256()
    size = 0
    try:
        with provider.open_read(key) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                spooled.write(chunk)
                size += len(chunk)
    except NotFound:
        spooled.close()
        raise ArchiveMissing(f"The backup's archive ({key}) is not in the location.") from None
    except StorageError as exc:
        spooled.close()
        raise ArchiveError(f"Downloading the archive failed: {exc}") from None
    got = digest.hexdigest()
    expected = (expected_sha256 or "").strip().lower()
    if expected and got != expected:
        spooled.close()
        raise ChecksumMismatch(
            f"The archive's checksum does not match the backup (expected {expected}, got {got}); "
            "it was changed or damaged in the store. Nothing was restored."
        )
    spooled.seek(0)
    return spooled, size, got


# --- tar records ------------------------------------------------------------------------


class _Gunzip:
    """Decompresses a gzip stream (several members allowed) chunk by chunk and
    checks each member's trailer, as ``gzip`` does, with errors as ArchiveDamaged."""

    def __init__(self, fileobj: BinaryIO):
        self.fileobj = fileobj
        self.buffer = bytearray()
        self.pos = 0
        self.eof = False
        self._new_member()
        self.started = False

    def _new_member(self) -> None:
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _fill(self, wanted: int) -> None:
        while len(self.buffer) - self.pos < wanted and not self.eof:
            raw = self.fileobj.read(CHUNK)
            if self.pos > CHUNK:
                del self.buffer[: self.pos]
                self.pos = 0
            if not raw:
                if not self.inflate.eof:
                    if not self.started:
                        raise ArchiveDamaged("it is empty")
                    raise ArchiveDamaged("it ends before the end of its gzip stream (truncated)")
                self.eof = True
                return
            self.started = True
            try:
                self.buffer += self.inflate.decompress(raw)
                while self.inflate.eof and self.inflate.unused_data:
                    rest = self.inflate.unused_data
                    if not rest.strip(b"\x00"):
                        break  # zero padding after the last member
                    self._new_member()
                    self.buffer += self.inflate.decompress(rest)
            except zlib.error as exc:
                raise ArchiveDamaged(f"its gzip data is corrupt ({exc})") from None

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


def iter_files(fileobj: BinaryIO):
    """(path, data) of every regular file of a tar.gz, checking headers and the trailer."""
    stream = _Gunzip(fileobj)
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
    stream.drain()


# --- the index of items -----------------------------------------------------------------

Key = tuple[str, str, str]  # (group-resource, namespace or "", name)


@dataclass
class Contents:
    """The items of an archive: their main copy, and copies at other versions."""

    items: dict[Key, bytes] = field(default_factory=dict)
    # key -> {version folder ("v1beta1", "v1-preferredversion"): bytes}, kept only
    # when they may be needed (see the module's docstring)
    versions: dict[Key, dict[str, bytes]] = field(default_factory=dict)
    format_version: str = ""
    entries: int = 0

    def group_resources(self) -> set[str]:
        return {key[0] for key in self.items} | {key[0] for key in self.versions}


def parse_path(path: str) -> tuple[Key, str] | None:
    """(key, version folder or "") for an item path, None for anything else."""
    parts = path.split("/")
    if len(parts) < 4 or parts[0] != "resources" or not parts[-1].endswith(".json"):
        return None
    gr, rest = parts[1], parts[2:]
    version = ""
    if rest[0] not in ("namespaces", "cluster"):
        version, rest = rest[0], rest[1:]
    name = rest[-1][:-5]
    if rest[0] == "namespaces" and len(rest) == 3:
        return (gr, rest[1], name), version
    if rest[0] == "cluster" and len(rest) == 2:
        return (gr, "", name), version
    return None


def read_contents(fileobj: BinaryIO, keep: Callable[[str, str], bool] | None = None) -> Contents:
    """Every item of the archive; ``keep(group_resource, namespace)`` may drop some
    without storing them. Raises ArchiveDamaged."""
    contents = Contents()
    items, versions = contents.items, contents.versions
    try:
        for path, data in iter_files(fileobj):
            contents.entries += 1
            if path == "metadata/version":
                contents.format_version = data.decode(errors="replace").strip()
                continue
            parsed = parse_path(path)
            if parsed is None:
                continue
            key, version = parsed
            if keep is not None and not keep(key[0], key[1]):
                continue
            if not version:
                items[key] = data
                copies = versions.get(key)
                if copies:  # preferred-version copies read before the main one
                    for folder in [f for f in copies if f.endswith(PREFERRED_SUFFIX)]:
                        del copies[folder]
                    if not copies:
                        del versions[key]
            elif key not in items or not version.endswith(PREFERRED_SUFFIX):
                versions.setdefault(key, {})[version] = data
    except ArchiveDamaged:
        raise
    except (ValueError, IndexError, UnicodeError) as exc:
        raise ArchiveDamaged(f"it could not be read ({exc})") from None
    if not contents.format_version and not items and not versions:
        raise ArchiveDamaged("it holds no metadata/version file and no resources")
    return contents
