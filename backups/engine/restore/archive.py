"""Reading a backup's archive for a restore: download, verify, index.

``spool(provider, key, expected_sha256)`` copies the archive from the store
into a temporary file (in memory while small), hashing it on the way; a
checksum that differs from the one recorded at backup time stops the restore
before anything touches the cluster.

``read_contents(fileobj)`` then reads the whole tar.gz once (with the one reader,
``velero/reader.iter_files``, which checks every header and the gzip trailer) and
keeps each item's JSON bytes, keyed by (group-resource, namespace, name). The bytes
go to an uncompressed temporary file (``ItemStore``), and memory holds only where
each item is: a restore of 300,000 objects keeps its memory flat, the archive's
objects on disk until each is created (the file is removed when closed).

Velero writes every item twice: at ``resources/<gr>/namespaces/<ns>/<name>.json``
(``.../cluster/<name>.json``), which is what a restore reads, and under
``<version>-preferredversion/`` (and, with its EnableAPIGroupVersions feature,
``<version>/``) for other versions. The versioned copies are kept only when
they are the only copy, or at another version than the main one: a restore
needs them only when the target cluster does not serve the main copy's version.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import BinaryIO

from backups.engine.storage.base import NotFound, Provider, StorageError
from backups.engine.velero.reader import CHUNK, ArchiveDamaged, ArchiveError, iter_files

# Archives at most this large stay in memory while being restored; larger ones
# go to a temporary file on disk.
IN_MEMORY = 8 * 1024 * 1024
PREFERRED_SUFFIX = "-preferredversion"


class ChecksumMismatch(ArchiveError):
    pass


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


# --- the index of items -----------------------------------------------------------------

Key = tuple[str, str, str]  # (group-resource, namespace or "", name)


_LENGTH_BITS = 27  # an item is at most MAX_ENTRY (64 MiB) long


class ItemStore(MutableMapping):
    """Item bytes by key, kept in an unlinked temporary file; memory holds one int per
    item (offset and length). Reads are positional (``os.pread``), so that the
    restore's worker threads read items at once. Replacing an item appends its new
    bytes; ``close()`` frees the file (as does the garbage collector)."""

    def __init__(self):
        self._where: dict[Key, int] = {}
        self._file = None
        self._end = 0
        self._unflushed = False

    def __setitem__(self, key: Key, data: bytes) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="palette-items-")  # noqa: SIM115
        self._file.write(data)
        self._where[key] = (self._end << _LENGTH_BITS) | len(data)
        self._end += len(data)
        self._unflushed = True

    def position(self, key: Key) -> int:
        """Where ``key``'s bytes are (KeyError when absent), for ``read``."""
        return self._where[key]

    def read(self, position: int) -> bytes:
        if self._unflushed:
            self._file.flush()
            self._unflushed = False
        offset, length = position >> _LENGTH_BITS, position & ((1 << _LENGTH_BITS) - 1)
        return os.pread(self._file.fileno(), length, offset) if length else b""

    def __getitem__(self, key: Key) -> bytes:
        return self.read(self._where[key])

    def __delitem__(self, key: Key) -> None:
        del self._where[key]

    def __contains__(self, key) -> bool:
        return key in self._where

    def __iter__(self) -> Iterator[Key]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def forget(self) -> None:
        """Drop the keys, keep the bytes: readers that hold a ``position`` still read."""
        self._where = {}

    def close(self) -> None:
        self._where = {}
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Contents:
    """The items of an archive: their main copy, and copies at other versions."""

    items: ItemStore = field(default_factory=ItemStore)
    # key -> {version folder ("v1beta1", "v1-preferredversion"): bytes}, kept only
    # when they may be needed (see the module's docstring)
    versions: dict[Key, dict[str, bytes]] = field(default_factory=dict)
    format_version: str = ""
    entries: int = 0

    def group_resources(self) -> set[str]:
        return {key[0] for key in self.items} | {key[0] for key in self.versions}

    def close(self) -> None:
        self.items.close()


def parse_path(path: str, shared: dict[str, str] | None = None) -> tuple[Key, str] | None:
    """(key, version folder or "") for an item path, None for anything else. With
    ``shared``, equal group-resources and namespaces are one string (one per archive,
    not one per item)."""
    parts = path.split("/")
    if len(parts) < 4 or parts[0] != "resources" or not parts[-1].endswith(".json"):
        return None
    gr, rest = parts[1], parts[2:]
    version = ""
    if rest[0] not in ("namespaces", "cluster"):
        version, rest = rest[0], rest[1:]
    name = rest[-1][:-5]
    if shared is not None:
        gr = shared.setdefault(gr, gr)
    if rest[0] == "namespaces" and len(rest) == 3:
        namespace = rest[1] if shared is None else shared.setdefault(rest[1], rest[1])
        return (gr, namespace, name), version
    if rest[0] == "cluster" and len(rest) == 2:
        return (gr, "", name), version
    return None


def read_contents(fileobj: BinaryIO, keep: Callable[[str, str], bool] | None = None) -> Contents:
    """Every item of the archive; ``keep(group_resource, namespace)`` may drop some
    without storing them. Raises ArchiveDamaged."""
    contents = Contents()
    items, versions = contents.items, contents.versions
    shared: dict[str, str] = {}
    try:
        for path, data in iter_files(fileobj):
            contents.entries += 1
            if path == "metadata/version":
                contents.format_version = data.decode(errors="replace").strip()
                continue
            parsed = parse_path(path, shared)
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
        contents.close()
        raise
    except (ValueError, IndexError, UnicodeError) as exc:
        contents.close()
        raise ArchiveDamaged(f"it could not be read ({exc})") from None
    except BaseException:
        contents.close()
        raise
    if not contents.format_version and not items and not versions:
        contents.close()
        raise ArchiveDamaged("it holds no metadata/version file and no resources")
    return contents
