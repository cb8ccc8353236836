"""Every served resource type at its group's preferred version, CRDs included.

Reads ``/api`` and ``/apis`` as raw JSON, then each group-version's resource
list, several at once. A resource is taken at the group's preferred version;
one served only at another version of its group is taken there (as client-go's
"server preferred resources" does). Subresources (``pods/log``), types that
cannot be listed, and events (core and ``events.k8s.io``: short-lived, and
never restored) are left out.

A group-version whose list cannot be read (typically an aggregated API whose
service is down, 503) does not stop the backup: it is reported, and the
backup ends partially failed, since its objects are missing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backups.engine.kube.api import ApiError, Kube

SKIPPED = {("", "events"), ("events.k8s.io", "events")}


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    resource: str  # plural
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()

    @property
    def group_resource(self) -> str:
        """Velero's folder name: ``pods``, ``deployments.apps``."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk_key(self) -> str:
        """The resource-list key: ``<apiVersion>/<Kind>``."""
        return f"{self.api_version}/{self.kind}"

    def list_path(self, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            return f"{base}/namespaces/{namespace}/{self.resource}"
        return f"{base}/{self.resource}"


@dataclass
class Discovery:
    types: list[ResourceType] = field(default_factory=list)
    # (group-version, reason) for each group-version that could not be read
    failures: list[tuple[str, str]] = field(default_factory=list)

    def find(self, group_resource: str) -> ResourceType | None:
        return next((t for t in self.types if t.group_resource == group_resource), None)


def server_version(kube: Kube) -> dict:
    """``/version``: gitVersion, major, minor."""
    return kube.get_json("/version")


def _parse_resource_list(group: str, version: str, doc: dict) -> list[ResourceType]:
    found = []
    for res in doc.get("resources") or []:
        name = res.get("name", "")
        verbs = tuple(res.get("verbs") or ())
        if not name or "/" in name or "list" not in verbs or (group, name) in SKIPPED:
            continue
        found.append(
            ResourceType(
                group=group,
                version=version,
                resource=name,
                kind=res.get("kind", ""),
                namespaced=bool(res.get("namespaced")),
                singular=(res.get("singularName") or "").lower(),
                short_names=tuple(s.lower() for s in res.get("shortNames") or ()),
                verbs=verbs,
            )
        )
    return found


def discover(kube: Kube, workers: int = 8) -> Discovery:
    """Raises ClusterUnreachable (nothing answers) or ApiError (``/api`` or ``/apis``
    refused); a single group-version failing is recorded in ``failures``, except one
    that answers 404: it went away between the two reads (a CRD being deleted) and
    has no objects to lose."""
    core_versions = kube.get_json("/api").get("versions") or ["v1"]
    groups = kube.get_json("/apis").get("groups") or []

    # (group, version, path), preferred version of each group first.
    wanted: list[tuple[str, str, str]] = [("", v, f"/api/{v}") for v in core_versions[:1]]
    for g in groups:
        name = g.get("name", "")
        preferred = (g.get("preferredVersion") or {}).get("version")
        versions = [v.get("version") for v in g.get("versions") or [] if v.get("version")]
        ordered = ([preferred] if preferred in versions else []) + [
            v for v in versions if v != preferred
        ]
        wanted += [(name, v, f"/apis/{name}/{v}") for v in ordered]

    def fetch(entry):
        group, version, path = entry
        try:
            return entry, kube.get_json(path), None
        except ApiError as exc:
            return entry, None, None if exc.status == 404 else str(exc)

    result = Discovery()
    seen: set[tuple[str, str]] = set()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (group, version, _path), doc, error in pool.map(fetch, wanted):
            if error is not None:
                result.failures.append((f"{group}/{version}" if group else version, error))
                continue
            if doc is None:
                continue
            for rt in _parse_resource_list(group, version, doc):
                if (group, rt.resource) not in seen:
                    seen.add((group, rt.resource))
                    result.types.append(rt)
    # A failure of a non-preferred version whose resources were all found at the
    # preferred one loses nothing; keep only failures that may hide objects.
    found_groups = {t.group for t in result.types}
    result.failures = [
        (gv, reason)
        for gv, reason in result.failures
        if (gv.split("/")[0] if "/" in gv else "") not in found_groups
    ]
    return result
