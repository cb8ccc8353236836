"""Reading a stored backup for people: its results, its contents, one item as YAML."""

from __future__ import annotations

import gzip
import json

import yaml

from locations.layout import Layout
from locations.providers.base import Provider

MASK = "••••••••"


def read_json_gz(provider: Provider, key: str):
    return json.loads(gzip.decompress(provider.get_bytes(key)))


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
    listing = read_json_gz(provider, layout.backup_file(name, "resource-list"))
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
    with provider.open_read(archive_key) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
        for member in tar:
            path = member.name
            if not (member.isfile() and path.startswith("resources/") and path.endswith(suffix)):
                continue
            if "-preferredversion/" in path:
                continue
            obj = json.loads(tar.extractfile(member).read())
            if obj.get("kind") == kind and obj.get("apiVersion") == api_version:
                return obj
    return None


def namespaces(provider: Provider, layout: Layout, name: str) -> list[str]:
    """The namespaces a backup holds objects of (from its resource list)."""
    listing = read_json_gz(provider, layout.backup_file(name, "resource-list"))
    found = {item.split("/", 1)[0] for items in listing.values() for item in items if "/" in item}
    found |= set(listing.get("v1/Namespace", []))
    return sorted(found)
