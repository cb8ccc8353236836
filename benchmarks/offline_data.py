"""The offline benchmark's backup (the large-cluster mix as a server lists it, written
with the engine's own archive writer) and its stand-in API server."""

from __future__ import annotations

import json
from collections import Counter

BACKUP = "offline"
PREFIX = "sc"


# --- the backup -----------------------------------------------------------------------------

TYPES = {  # kind -> (group, version, plural, namespaced)
    "Namespace": ("", "v1", "namespaces", False),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "Service": ("", "v1", "services", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "Widget": ("demo.palette.io", "v1", "widgets", True),
    "CustomResourceDefinition": (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        False,
    ),
}


def served(obj: dict, i: int) -> dict:
    """``obj`` as a LIST returns it: the fields the server adds (no apiVersion/kind)."""
    meta = obj["metadata"]
    meta.update(
        uid=f"{i:08x}-1f2e-4d3c-8b7a-{i:012x}",
        resourceVersion=str(1000 + i),
        creationTimestamp="2026-11-30T08:15:00Z",
        managedFields=[
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": obj["apiVersion"],
                "time": "2026-11-30T08:15:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {f"f:{k}": {} for k in meta.get("labels", {})}},
                    **{f"f:{k}": {} for k in obj if k not in ("apiVersion", "kind", "metadata")},
                },
            }
        ],
    )
    if obj["kind"] == "Deployment":
        meta["generation"] = 1
        obj["status"] = {"observedGeneration": 1, "conditions": [{"type": "Available"}]}
    if obj["kind"] == "Service" and obj["spec"].get("clusterIP") != "None":
        obj["spec"].update(clusterIP=f"10.0.{i // 250 % 250}.{i % 250}", type="ClusterIP")
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def served_objects(n: int):
    """(kind, served object bytes) of the first ``n`` objects of the mix, and their
    namespaces."""
    from devenv.scale_objects import namespace_object, scale_object

    for i in range(n):
        obj = scale_object(i, PREFIX)
        kind = obj["kind"]
        yield kind, json.dumps(served(obj, i), separators=(",", ":")).encode()
    from devenv.scale_objects import namespaces_for

    for k in range(namespaces_for(n)):
        obj = namespace_object(k, PREFIX)
        yield "Namespace", json.dumps(served(obj, k), separators=(",", ":")).encode()


def write_backup(directory: str, n: int) -> dict:
    """The backup of ``n`` objects in ``directory`` (Velero's layout), with the archive's
    index beside it as the engine writes it (pages of one type at a time); what it holds."""
    from backups.engine.kube.pages import Entry, type_prefix, with_type
    from backups.engine.storage.layout import Layout
    from backups.engine.velero import index
    from backups.engine.velero.archive import ArchiveWriter, ItemRecords
    from backups.engine.velero.format import ResourceList, gz_json
    from locations.providers.filesystem import FilesystemProvider

    provider = FilesystemProvider(directory, roots=[directory])
    layout = Layout("velero")
    names = ResourceList()
    counts: Counter = Counter()
    pages: dict[str, tuple[ItemRecords, list[bytes], list[str]]] = {}  # type -> its page

    def flush(archive, type_name: str) -> None:
        made, parts, keys = pages.pop(type_name)
        archive.write_items(type_name, made, keys, b"".join(parts))
        names.add(type_name, keys)

    with provider.open_write(layout.backup_file(BACKUP, "archive"), "application/gzip") as sink:
        archive = ArchiveWriter(sink, mtime=1_700_000_000)
        archive.add_version_file()
        for kind, data in served_objects(n):
            group, version, plural, namespaced = TYPES[kind]
            gr = f"{plural}.{group}" if group else plural
            api_version = f"{group}/{version}" if group else version
            type_name = f"{api_version}/{kind}"
            if type_name not in pages:
                pages[type_name] = (ItemRecords(gr, version, 1_700_000_000), [], [])
            made, parts, keys = pages[type_name]
            meta = json.loads(data)["metadata"]
            ns = meta.get("namespace", "") if namespaced else ""
            entry = Entry(data, meta["name"], ns, None, False, False)
            made.add(parts, ns, meta["name"], with_type(entry, type_prefix(api_version, kind)))
            keys.append(f"{ns}/{meta['name']}" if ns else meta["name"])
            counts[kind] += 1
            if len(keys) >= 500:  # a LIST page
                flush(archive, type_name)
        for type_name in list(pages):
            flush(archive, type_name)
        size, sha = archive.finish()
    provider.put_bytes(layout.backup_file(BACKUP, "archive-index"), index.encode(archive.index()))
    provider.put_bytes(layout.backup_file(BACKUP, "resource-list"), gz_json(names.as_dict()))
    provider.put_bytes(
        layout.backup_file(BACKUP, "results"), gz_json({"errors": {}, "warnings": {}})
    )
    return {"size": size, "sha256": sha, "items": sum(counts.values()), "kinds": dict(counts)}


# --- a stand-in API server ------------------------------------------------------------------


class NullKube:
    """Answers discovery for the mix's types and every create with 201 at once."""

    server = "https://null.invalid"

    def __init__(self, *args, **kwargs):
        self.calls: Counter = Counter()
        groups: dict[str, dict[str, list]] = {}
        for kind, (group, version, plural, namespaced) in TYPES.items():
            groups.setdefault(group, {}).setdefault(version, []).append(
                {"name": plural, "kind": kind, "namespaced": namespaced,
                 "verbs": ["create", "get", "list", "delete", "patch"]}
            )  # fmt: skip
        self.docs = {"/version": {"gitVersion": "v1.36.3"}, "/api": {"versions": ["v1"]}}
        self.docs["/apis"] = {
            "groups": [
                {"name": g, "versions": [{"version": "v1"}], "preferredVersion": {"version": "v1"}}
                for g in groups
                if g
            ]
        }
        for group, versions in groups.items():
            for version, resources in versions.items():
                path = f"/apis/{group}/{version}" if group else f"/api/{version}"
                self.docs[path] = {"resources": resources}

    @classmethod
    def connect(cls, cluster, pool_size: int = 8):
        return cls()

    def get_json(self, path, query=None):
        return self.docs[path]

    def get(self, path, query=None):
        return json.dumps(self.docs[path]).encode()

    def call(self, method, path, body=None, query=None, content_type=None):
        self.calls[method] += 1
        if method == "POST":
            return 201, b"{}", "Created"
        return 404, b'{"reason":"NotFound","details":{}}', "Not Found"

    def describe(self, exc):
        return str(exc)

    def close(self):
        pass
