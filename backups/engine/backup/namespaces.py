"""Which namespaces a backup covers, the LISTs that follow from it, and which
Namespace objects end up in the archive.

Velero's rules for the Namespace objects (read from its item collector): a
namespace is written when an object of the backup lives in it; or when it
matches the label selector; or, without a label selector (or with a namespace
filter besides it), when the namespace filter selects it. Terminating
namespaces are written only for the objects in them. This is so with
``cluster_resources=never`` too: restore needs the namespaces.

One deviation: Velero also writes a namespace that matches the label selector
but that the namespace filter excludes; the console keeps excluded namespaces
out of the backup entirely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backups.engine.backup.collect import PAGE_SIZE, Unit
from backups.engine.filters import EXCLUDE_LABEL, Scope
from backups.engine.kube.api import Kube
from backups.engine.kube.discovery import Discovery, ResourceType
from backups.engine.kube.pages import Entry, decode_page, type_prefix, with_type
from backups.engine.velero.archive import ItemRecords
from backups.engine.velero.format import Results

TRACKED_FOR_RELATED = {"persistentvolumeclaims", "serviceaccounts"}


def list_all(kube: Kube, path: str, selector: str = "") -> list[Entry]:
    """Every item of a (small) list, paged."""
    entries: list[Entry] = []
    token = ""
    while True:
        query = {"limit": PAGE_SIZE}
        if selector:
            query["labelSelector"] = selector
        if token:
            query["continue"] = token
        page = decode_page(kube.get(path, query))
        entries.extend(page.items)
        token = page.continue_token
        if not token:
            return entries


@dataclass
class NamespacePlan:
    scope: Scope
    rtype: ResourceType
    objects: dict[str, Entry] = field(default_factory=dict)  # existing, allowed by the filter
    selector_matches: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)

    def describe(self) -> str:
        ns = self.scope.namespaces
        if ns.selects_everything:
            return "all"
        text = ", ".join(ns.include) if not ns.includes_all else "all"
        if ns.exclude:
            text += " except " + ", ".join(ns.exclude)
        return text

    def units(self, discovery: Discovery, scope: Scope) -> list[Unit]:
        """The LISTs of the main collection, namespaced types first by size of work."""
        units: list[Unit] = []
        explicit = scope.namespaces.explicit
        ns_filter = None if scope.namespaces.selects_everything else scope.namespaces
        for rt in discovery.types:
            if not scope.wants_type(rt):
                continue
            track = scope.related_cluster_items and rt.group_resource in TRACKED_FOR_RELATED
            if not rt.namespaced:
                units.append(Unit(rt, selector=scope.selector))
            elif explicit is None:
                units.append(Unit(rt, selector=scope.selector, ns_filter=ns_filter, track=track))
            else:
                units += [
                    Unit(rt, namespace=ns, selector=scope.selector, track=track)
                    for ns in explicit
                    if ns in self.objects
                ]
        return units

    def to_write(self, with_items: set[str]) -> list[str]:
        """The namespaces whose objects go into the archive."""
        names = set(with_items)
        selector = self.scope.selector
        for name, entry in self.objects.items():
            if entry.deleting:
                continue
            # With a selector and no namespace filter, only matching namespaces.
            everything = self.scope.namespaces.selects_everything
            if not selector or name in self.selector_matches or not everything:
                names.add(name)
        return sorted(n for n in names if n in self.objects and not _excluded(self.objects[n]))

    def records(self, names: list[str], mtime: int) -> tuple[bytes, list[str], ItemRecords]:
        prefix = type_prefix(self.rtype.api_version, self.rtype.kind)
        records = ItemRecords(self.rtype.group_resource, self.rtype.version, mtime)
        parts: list[bytes] = []
        for name in names:
            records.add(parts, "", name, with_type(self.objects[name], prefix))
        return b"".join(parts), list(names), records


def _excluded(entry: Entry) -> bool:
    return bool(entry.labels and entry.labels.get(EXCLUDE_LABEL) == "true")


def plan_namespaces(kube: Kube, discovery: Discovery, scope: Scope, results: Results):
    """List the namespaces (raises KubeError when that fails) and check the filter
    against them: an included namespace that does not exist is an error, as in Velero."""
    rtype = discovery.find("namespaces")
    if rtype is None:
        raise ValueError("the cluster serves no namespaces resource")
    plan = NamespacePlan(scope, rtype)
    path = rtype.list_path()
    for entry in list_all(kube, path):
        if scope.namespaces.allows(entry.name):
            plan.objects[entry.name] = entry
    if scope.selector:
        plan.selector_matches = {e.name for e in list_all(kube, path, scope.selector)}
    for name in scope.namespaces.explicit or ():
        if name not in plan.objects:
            plan.missing.append(name)
            results.error(
                f"Namespace {name} was chosen but does not exist in the cluster; "
                "nothing of it is in the backup."
            )
    return plan
