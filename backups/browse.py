"""Reading a stored backup for people: its results, its contents, one item as YAML."""

from __future__ import annotations

import gzip
import io
import json
import zlib

import msgspec
import yaml

from locations.layout import Layout
from locations.providers.base import Provider, StorageError

MASK = "••••••••"

# What the browser will decompress (a bucket is input: a gzip or tar bomb must be
# refused, not fill the memory or the CPU). Real files are far smaller.
MAX_LISTING_BYTES = 64 * 1024 * 1024  # results, resource list: decompressed
MAX_ITEM_BYTES = 16 * 1024 * 1024  # one object in the archive
MAX_SCAN_BYTES = 16 * 1024**3  # read through the archive to find one object
MAX_RATIO = 200  # decompressed / compressed, past the first MAX_ITEM_BYTES


class Unreadable(StorageError):
    """A stored file the browser will not show (too big, a bomb, or not what Velero writes)."""


def _gunzip(data: bytes, limit: int, what: str) -> bytes:
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as exc:
        raise Unreadable(f"{what} is not valid gzip ({exc})") from None
    if inflater.unconsumed_tail:
        raise Unreadable(f"{what} decompresses to more than {limit // 2**20} MiB; not shown")
    return out


class _Section(msgspec.Struct):
    velero: list[str] | None = None
    cluster: list[str] | None = None
    namespaces: dict[str, list[str]] | None = None


RESULTS = dict[str, _Section | None]
RESOURCE_LIST = dict[str, list[str]]


def read_json_gz(provider: Provider, key: str, shape=None):
    """A small gzipped JSON file, decompressed within MAX_LISTING_BYTES and, with
    ``shape``, checked to have it (Unreadable otherwise)."""
    what = key.rsplit("/", 1)[-1]
    with provider.open_read(key) as stream:
        compressed = stream.read(MAX_LISTING_BYTES + 1)
    if len(compressed) > MAX_LISTING_BYTES:
        raise Unreadable(f"{what} is larger than {MAX_LISTING_BYTES // 2**20} MiB; not shown")
    try:
        document = json.loads(_gunzip(compressed, MAX_LISTING_BYTES, what))
        return document if shape is None else msgspec.convert(document, shape)
    except msgspec.ValidationError as exc:
        raise Unreadable(f"{what} is not what Velero writes ({exc})") from None
    except ValueError as exc:
        raise Unreadable(f"{what} is not JSON ({exc})") from None


class _Bounded(io.RawIOBase):
    """The decompressed archive, refused past MAX_SCAN_BYTES or MAX_RATIO."""

    def __init__(self, raw):
        self._raw = raw
        self._counted = _Counting(raw)
        self._gz = gzip.GzipFile(fileobj=self._counted, mode="rb")
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self._gz.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            raise Unreadable(f"the archive is not valid gzip ({exc})") from None
        self.total += n
        if self.total > MAX_SCAN_BYTES:
            raise Unreadable(f"the archive is larger than {MAX_SCAN_BYTES // 2**30} GiB unpacked")
        if self.total > MAX_ITEM_BYTES and self.total > MAX_RATIO * max(self._counted.n, 1):
            raise Unreadable(
                f"the archive unpacks to more than {MAX_RATIO} times its size (a gzip bomb?)"
            )
        return n


class _Counting(io.RawIOBase):
    def __init__(self, raw):
        self._raw, self.n = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self.n += len(data)
        return len(data)


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
    listing = read_json_gz(provider, layout.backup_file(name, "resource-list"), RESOURCE_LIST)
    rows = []
    for type_name, items in sorted(listing.items()):
        by_namespace: dict[str, list[str]] = {}
        for item in items:
            namespace, _, item_name = item.rpartition("/")
            by_namespace.setdefault(namespace, []).append(item_name)
        rows.append(
            {"type": type_name, "count": len(items), "namespaces": sorted(by_namespace.items())}
        )
    return rows


def mask_secret(obj: dict) -> dict:
    """A Secret as a page may show it: keys kept, every value masked (also inside
    the last-applied annotation, which repeats the data in clear)."""
    if obj.get("kind") != "Secret":
        return obj
    masked = dict(obj)
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            masked[field] = dict.fromkeys(obj[field], MASK)
    metadata = dict(obj.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = MASK
        metadata["annotations"] = annotations
        masked["metadata"] = metadata
    return masked


def as_yaml(obj: dict) -> str:
    return yaml.safe_dump(
        mask_secret(obj), sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def find_item(
    provider: Provider, layout: Layout, name: str, type_name: str, namespace: str, item: str
) -> dict | None:
    """One object from the archive, by its resource-list type (``apps/v1/Deployment``),
    namespace ('' when cluster-scoped) and name. Streams through the tar.gz (no
    temporary copy); stops at the first match."""
    import tarfile

    api_version, _, kind = type_name.rpartition("/")
    scope = f"/namespaces/{namespace}/" if namespace else "/cluster/"
    suffix = f"{scope}{item}.json"
    archive_key = layout.backup_file(name, "archive")
    with provider.open_read(archive_key) as raw:
        unpacked = io.BufferedReader(_Bounded(raw), 1024 * 1024)
        try:
            with tarfile.open(fileobj=unpacked, mode="r|") as tar:
                for member in tar:
                    path = member.name
                    if not (member.isfile() and path.startswith("resources/")):
                        continue
                    if not path.endswith(suffix) or "-preferredversion/" in path:
                        continue
                    if member.size > MAX_ITEM_BYTES:
                        raise Unreadable(
                            f"{path} is larger than {MAX_ITEM_BYTES // 2**20} MiB; not shown"
                        )
                    obj = json.loads(tar.extractfile(member).read())
                    if not isinstance(obj, dict):
                        raise Unreadable(f"{path} is not a Kubernetes object")
                    if obj.get("kind") == kind and obj.get("apiVersion") == api_version:
                        return obj
        except tarfile.TarError as exc:
            raise Unreadable(f"the archive is not a valid tar.gz ({exc})") from None
        except ValueError as exc:
            raise Unreadable(f"an object in the archive is not JSON ({exc})") from None
    return None


def namespaces(provider: Provider, layout: Layout, name: str) -> list[str]:
    """The namespaces a backup holds objects of (from its resource list)."""
    listing = read_json_gz(provider, layout.backup_file(name, "resource-list"), RESOURCE_LIST)
    found = {item.split("/", 1)[0] for items in listing.values() for item in items if "/" in item}
    found |= set(listing.get("v1/Namespace", []))
    return sorted(found)
