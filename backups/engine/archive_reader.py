"""Reading a backup back: its archive, one item in it, its resource list.

Everything streams from the store: the tar.gz is read in one pass (no temp
file, no seeking), so looking up one item costs one download of the archive
at most, and memory holds one entry at a time. Works on archives Velero
wrote as well as on the console's own.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from locations.layout import Layout
from locations.providers.base import Provider

from .archive import item_path

# An entry larger than this is not an object the console wrote (Kubernetes
# objects are at most ~1.5 MiB); it is skipped rather than read into memory.
MAX_ENTRY = 64 * 1024 * 1024


class ItemNotFound(LookupError):
    """The archive has no such item; ``str()`` says which."""


def iter_archive(fileobj: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file in a tar.gz stream, in archive order."""
    with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
        for member in tar:
            if not member.isfile() or member.size > MAX_ENTRY:
                continue
            handle = tar.extractfile(member)
            yield member.name, handle.read() if handle else b""


def read_item(
    provider: Provider,
    layout: Layout,
    backup_name: str,
    group_resource: str,
    namespace: str | None,
    name: str,
) -> dict:
    """One backed-up object, as a dict. Raises ItemNotFound, or StorageError when
    the archive cannot be read.

    The unversioned path is what Velero restores from; an archive that only has
    the ``<version>-preferredversion`` copy is read from there.
    """
    wanted = item_path(group_resource, namespace or None, name)
    folder = f"resources/{group_resource}/"
    tail = wanted[len(folder) :]  # namespaces/<ns>/<name>.json or cluster/<name>.json
    fallback = None
    with provider.open_read(layout.backup_file(backup_name, "archive")) as stream:
        for path, data in iter_archive(stream):
            if path == wanted:
                return json.loads(data)
            if fallback is None and path.startswith(folder) and path.endswith("/" + tail):
                middle = path[len(folder) : -len(tail) - 1]
                if middle.endswith("-preferredversion") and "/" not in middle:
                    fallback = json.loads(data)
    if fallback is not None:
        return fallback
    where = f"namespace {namespace}" if namespace else "the cluster scope"
    raise ItemNotFound(f"The backup {backup_name} has no {group_resource} {name!r} in {where}.")


def list_contents(provider: Provider, layout: Layout, name: str) -> dict[str, list[str]]:
    """The resource list: ``"<apiVersion>/<Kind>"`` -> ``ns/name`` or ``name``.
    Raises NotFound (a StorageError) when the backup has no resource list."""
    key = layout.backup_file(name, "resource-list")
    with provider.open_read(key) as stream, gzip.GzipFile(fileobj=stream) as unzipped:
        return json.load(unzipped)
