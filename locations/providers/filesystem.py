"""A local directory as a location: the embedded default and single-machine use.

Keys map to paths under the directory. A write goes to a hidden temporary file
beside its target and is renamed over it on close (after fsync), so readers
never see half an object; deletes remove directories left empty, so nothing
lingers after a probe or a deleted backup.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from backups.engine.storage.base import (
    AccessDenied,
    BucketMissing,
    NotFound,
    ObjectInfo,
    Provider,
    StorageError,
    Writer,
    check_range,
)
from locations.providers.errors import Misconfigured

TEMP_SUFFIX = ".palette-partial"


class FileWriter(Writer):
    def __init__(self, provider: FilesystemProvider, key: str, path: str):
        self._provider = provider
        self._key = key
        self._path = path
        self.bytes_written = 0
        directory = os.path.dirname(path)
        with provider.translated("write", key):
            os.makedirs(directory, exist_ok=True)
            fd, self._temp = tempfile.mkstemp(
                dir=directory, prefix="." + os.path.basename(path) + ".", suffix=TEMP_SUFFIX
            )
        self._file = os.fdopen(fd, "wb")

    def write(self, data) -> int:
        with self._provider.translated("write", self._key):
            self._file.write(data)
        self.bytes_written += len(data)
        return len(data)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            with self._provider.translated("write", self._key):
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                os.chmod(self._temp, 0o640)
                os.replace(self._temp, self._path)
                _fsync_dir(os.path.dirname(self._path))
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)
        self._provider._prune(os.path.dirname(self._path))


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def directory_under(path: str, roots: list[str]) -> str:
    """The real path of ``path`` when it lies under one of ``roots`` (real paths
    compared, symlinks resolved, ``..`` refused); Misconfigured otherwise, with a
    message that says nothing about what is on the disk."""
    if not path or not os.path.isabs(path):
        raise Misconfigured(
            f"The directory must be an absolute path, not {path!r}"
            if path
            else "Set the directory of the local location"
        )
    if ".." in path.split("/") or "\x00" in path:
        raise Misconfigured(f"The directory {path!r} must not contain '..'")
    real = os.path.realpath(path)
    if not any(inside(real, os.path.realpath(root)) for root in roots):
        raise Misconfigured(
            f"The directory {path!r} is outside the directories this server allows for local "
            "locations (an administrator sets them with PALETTE_FILESYSTEM_ROOTS)"
        )
    return real


class FilesystemProvider(Provider):
    """Only under the server's allowed roots (``locations.placement``), checked on
    the real path each time a provider is built; no key, prefix or symlink inside
    the directory ever leads out of it."""

    def __init__(self, root: str, roots: list[str] | None = None):
        """``roots``: where the directory may be; by default the server's settings (a
        script without Django settings names its own)."""
        if roots is None:
            from locations.placement import filesystem_roots

            roots = filesystem_roots()
        self.root = directory_under(root, roots)

    # Paths and errors ----------------------------------------------------------------

    def _inside(self, path: str, what: str) -> str:
        """``path`` when its real path stays in the directory; else Misconfigured."""
        real = os.path.realpath(path)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise Misconfigured(f"{what!r} leads out of the location's directory")
        return path

    def _parts(self, text: str, what: str) -> list[str]:
        parts = [part for part in text.split("/") if part]
        if any(part in (".", "..") or "\x00" in part for part in parts):
            raise Misconfigured(f"{what!r} is not a valid object key")
        return parts

    def _path(self, key: str) -> str:
        parts = self._parts(key, key)
        if not parts:
            raise Misconfigured(f"{key!r} is not a valid object key")
        return self._inside(os.path.join(self.root, *parts), key)

    def _check_root(self) -> None:
        try:
            is_dir = stat.S_ISDIR(os.stat(self.root).st_mode)
        except FileNotFoundError:
            raise BucketMissing(f"Directory '{self.root}' does not exist") from None
        except NotADirectoryError:
            raise Misconfigured(f"'{self.root}' is not a directory") from None
        except PermissionError:
            raise AccessDenied(
                f"Directory '{self.root}' is not accessible by this process "
                f"(user id {os.geteuid()})"
            ) from None
        if not is_dir:
            raise Misconfigured(f"'{self.root}' is not a directory")

    @contextlib.contextmanager
    def translated(self, action: str, key: str):
        """Turn OSErrors into StorageErrors that name the directory, not a traceback."""
        try:
            yield
        except StorageError:
            raise
        except FileNotFoundError:
            self._check_root()
            raise NotFound(f"Object '{key}' does not exist in '{self.root}'") from None
        except PermissionError:
            self._check_root()
            raise AccessDenied(
                f"Directory '{self.root}' is not {'readable' if action == 'read' else 'writable'}"
                f" by this process (user id {os.geteuid()})"
            ) from None
        except NotADirectoryError:
            self._check_root()
            raise Misconfigured(
                f"Cannot {action} '{key}' in '{self.root}': part of its path is a file"
            ) from None
        except OSError as exc:
            self._check_root()
            if exc.errno == errno.EROFS:
                raise AccessDenied(
                    f"Directory '{self.root}' is on a read-only file system"
                ) from None
            if exc.errno == errno.ENOSPC:
                raise StorageError(f"No space left on the device of '{self.root}'") from None
            raise StorageError(
                f"Cannot {action} '{key}' in '{self.root}': {exc.strerror or exc}"
            ) from None

    def _prune(self, directory: str) -> None:
        """Remove empty directories from ``directory`` up to (not including) the root."""
        while directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    # Provider ------------------------------------------------------------------------

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        path = self._path(key)
        self._check_root()
        return FileWriter(self, key, path)

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        with self.translated("read", key):
            if os.path.isdir(path):
                raise NotFound(f"Object '{key}' does not exist in '{self.root}'")
            return open(path, "rb")  # noqa: SIM115 (the caller closes it)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if not check_range(start, length):
            return b""
        with self.open_read(key) as stream, self.translated("read", key):
            stream.seek(start)
            return stream.read(length)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check_root()
        # Walk only the directory the prefix names, then filter on the whole prefix.
        folders = self._parts(prefix, prefix)
        if not prefix.endswith("/"):
            folders = folders[:-1]
        start = self._inside(os.path.join(self.root, *folders), prefix)
        if not os.path.isdir(start):
            return
        found = []
        with self.translated("read", prefix):
            for directory, dirs, files in os.walk(start):
                dirs.sort()
                for name in files:
                    if name.endswith(TEMP_SUFFIX):
                        continue
                    path = os.path.join(directory, name)
                    key = os.path.relpath(path, self.root).replace(os.sep, "/")
                    if not key.startswith(prefix):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        info = os.stat(path)
                        modified = datetime.fromtimestamp(info.st_mtime, UTC)
                        found.append(ObjectInfo(key, info.st_size, modified))
        yield from sorted(found, key=lambda info: info.key)

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under ``prefix`` (a folder, '' = the root)."""
        self._check_root()
        start = self._inside(os.path.join(self.root, *self._parts(prefix, prefix)), prefix)
        with self.translated("read", prefix), contextlib.suppress(FileNotFoundError):
            return sorted(entry.name for entry in os.scandir(start) if entry.is_dir())
        return []

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self.translated("delete", key):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return
        self._prune(os.path.dirname(path))

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))
