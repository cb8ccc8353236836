"""Reading a stored backup back (the one reader, for pages and restores alike): its
results, its resource list, the namespaces it holds, one item in its archive.

Everything streams from the store: the tar.gz is read in one pass (no temp file,
no seeking), so looking up one item costs one download of the archive at most,
and memory holds one entry at a time. Works on archives Velero wrote as well as
on the console's own. (A restore reads the whole archive, checked, with
``restore/archive.py``.)
"""

from __future__ import annotations

import gzip
import json
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from backups.engine.storage.base import NotFound, Provider
from backups.engine.storage.layout import Layout

# An entry larger than this is not an object the console wrote (Kubernetes
# objects are at most ~1.5 MiB); it is skipped rather than read into memory.
MAX_ENTRY = 64 * 1024 * 1024
PREFERRED = "-preferredversion/"


def iter_archive(fileobj: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file in a tar.gz stream, in archive order."""
    with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
        for member in tar:
            if not member.isfile() or member.size > MAX_ENTRY:
                continue
            handle = tar.extractfile(member)
            yield member.name, handle.read() if handle else b""


def read_json_gz(provider: Provider, key: str):
    return json.loads(gzip.decompress(provider.get_bytes(key)))


def resource_list(provider: Provider, layout: Layout, name: str) -> dict[str, list[str]]:
    """``"<apiVersion>/<Kind>"`` -> ``ns/name`` or ``name``. Raises NotFound (a
    StorageError) when the backup has no resource list."""
    return read_json_gz(provider, layout.backup_file(name, "resource-list"))


def results(provider: Provider, layout: Layout, name: str) -> dict:
    """``{"errors": [(scope, message)], "warnings": [...]}`` flattened for a page."""
    raw = read_json_gz(provider, layout.backup_file(name, "results"))
    flat = {}
    for kind in ("errors", "warnings"):
        section = raw.get(kind) or {}
        rows = [("velero", m) for m in section.get("velero") or []]
        rows += [("cluster", m) for m in section.get("cluster") or []]
        for namespace, messages in sorted((section.get("namespaces") or {}).items()):
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
            for path, _data in iter_archive(stream):
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


def find_item(
    provider: Provider, layout: Layout, name: str, type_name: str, namespace: str, item: str
) -> dict | None:
    """One object from the archive, by its resource-list type (``apps/v1/Deployment``),
    namespace ('' when cluster-scoped) and name; None when the archive has none.

    The unversioned path is what Velero restores from; an archive that only has
    the ``<version>-preferredversion`` copy is read from there. Stops at the first
    match. Raises StorageError when the archive cannot be read.
    """
    api_version, _, kind = type_name.rpartition("/")
    suffix = (f"/namespaces/{namespace}/" if namespace else "/cluster/") + f"{item}.json"
    fallback = None
    with provider.open_read(layout.backup_file(name, "archive")) as stream:
        for path, data in iter_archive(stream):
            if not (path.startswith("resources/") and path.endswith(suffix)):
                continue
            preferred = PREFERRED in path
            if preferred and fallback is not None:
                continue
            obj = json.loads(data)
            if obj.get("kind") != kind or obj.get("apiVersion") != api_version:
                continue
            if not preferred:
                return obj
            fallback = obj
    return fallback
