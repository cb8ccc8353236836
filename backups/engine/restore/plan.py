"""What a restore creates, in which order: pure planning over the archive's contents.

``plan_restore(contents, options)`` applies the restore's filters to the items of
the archive, works out the cluster-scoped items and namespaces they need, and
returns the items grouped by resource type in Velero's priority order, each with
everything decided: its target namespace, its version, how it will be sanitized
(``sanitize.py``, applied by ``PlannedItem.body()`` when the item is created,
so that the plan holds compact JSON bytes rather than parsed objects). Nothing
here talks to a cluster.

Velero's semantics (its restore code, read for facts):

* Namespace filters (include/exclude, ``*`` globs) apply to the namespaces as they
  are in the backup; the mapping then gives each namespace its target name.
* Cluster-scoped items: ``always`` all of them; ``never`` none; ``auto`` all of them
  when the namespace filter selects every namespace, otherwise only those that the
  restored items need: the CustomResourceDefinition of each restored custom
  resource and, when PVs are restored, the volume each restored claim is bound to.
  Those related items skip the resource include list and the label selector (a
  custom resource cannot exist without its definition); an explicit exclude still
  drops them.
* PersistentVolumes are restored only when ``restore_pvs`` is set (Velero restores
  them unless told not to: ``unlike_velero.py`` says why the console does not, and the
  plan counts the ones it leaves out). A volume whose
  reclaim policy is ``Delete`` is not restored (Velero would re-provision it, since
  there is no snapshot to restore it from): its claim loses ``volumeName`` so that
  the target's provisioner makes a new volume.
* Every namespace that restored items live in is created (from the backup's
  Namespace object when it has one, else blank), even with ``never``; a namespace
  selected by the filters but left empty is restored too unless ``never``.
* Never restored: nodes, events, CSI nodes, volume attachments, Velero's own
  backups/restores/repositories; pods that finished (Succeeded or Failed) and
  mirror pods; Jobs that completed; legacy service-account token secrets.
  Beyond Velero, the objects that the target's own controllers make and would
  fight over are left to them: the ``kube-root-ca.crt`` ConfigMap of each
  namespace (each cluster publishes its own CA), and the control plane's own
  state listed in ``control_plane.py`` (IPAddresses, managed Endpoints and
  EndpointSlices, ...; naming the type in the include list keeps it). Kinds the
  target serves without the ``create`` verb are left out too, with that reason.
* Order: Velero's priority list, then every other type alphabetically, then
  cluster-api and carvel types last. Each type is one group; the apply step
  creates a group's items in parallel and the groups one after the other.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from backups.engine import control_plane
from backups.engine.control_plane import not_creatable_reason
from backups.engine.filters import selector_matches
from backups.engine.restore.archive import Contents, ItemStore, Key
from backups.engine.restore.options import RestoreOptions
from backups.engine.restore.sanitize import SanitizeOptions, is_legacy_token_secret, sanitize

CRD = "customresourcedefinitions.apiextensions.k8s.io"
PRIORITIES = (
    CRD,
    "namespaces",
    "storageclasses.storage.k8s.io",
    "volumesnapshotclass.snapshot.storage.k8s.io",
    "volumesnapshotcontents.snapshot.storage.k8s.io",
    "volumesnapshots.snapshot.storage.k8s.io",
    "datauploads.velero.io",
    "persistentvolumes",
    "persistentvolumeclaims",
    "clusterroles.rbac.authorization.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "serviceaccounts",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "secrets",
    "configmaps",
    "limitranges",
    "priorityclasses.scheduling.k8s.io",
    "pods",
    "replicasets.apps",
    "clusterclasses.cluster.x-k8s.io",
    "endpoints",
    "services",
)
LOW_PRIORITIES = (
    "clusterbootstraps.run.tanzu.vmware.com",
    "clusters.cluster.x-k8s.io",
    "clusterresourcesets.addons.cluster.x-k8s.io",
)
NEVER_RESTORED = frozenset(
    (
        "nodes",
        "events",
        "events.events.k8s.io",
        "csinodes.storage.k8s.io",
        "volumeattachments.storage.k8s.io",
        "backups.velero.io",
        "restores.velero.io",
        "backuprepositories.velero.io",
        "resticrepositories.velero.io",
    )
)


def order_key(group_resource: str) -> tuple:
    if group_resource in PRIORITIES:
        return (0, PRIORITIES.index(group_resource), "")
    if group_resource in LOW_PRIORITIES:
        return (2, LOW_PRIORITIES.index(group_resource), "")
    return (1, 0, group_resource)


# --- the plan -----------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class PlannedItem:
    """One object to restore. It points at the archive's JSON bytes (in the restore's
    ``ItemStore``, on disk) and is sanitized when created (``body()``): a plan of many
    objects holds neither their parsed dicts nor their bytes."""

    group_resource: str
    source_namespace: str
    namespace: str  # in the target
    name: str
    api_version: str
    kind: str
    # the archive's JSON: the bytes, or their position in ``store``
    source: bytes | int = b""
    options: SanitizeOptions | None = None
    prepared: dict | None = None  # an object the plan built (a namespace), sanitized
    # other versions of the object ({"v1beta1": bytes}), for a target that does
    # not serve the main copy's version
    alternates: dict[str, bytes] | None = None
    store: ItemStore | None = None
    # once applied: Velero's word for what happened, and the type it went in as
    # (``apiVersion/Kind``) when the target took it at another version
    action: str = ""
    served_as: str = ""

    @property
    def data(self) -> bytes:
        """The archive's JSON of the object (read from the store each time)."""
        if self.store is not None and isinstance(self.source, int):
            return self.store.read(self.source)
        return self.source

    def body(self, data: bytes | None = None) -> dict:
        """The sanitized (and modified) object to create, a new dict each time, from
        ``data`` (an alternate copy) or the main copy."""
        return self.prepare(data)[0]

    def prepare(self, data: bytes | None = None) -> tuple[dict, list[str]]:
        """(the object to create, notes on what the restore changed in it: namespace
        references rewritten, resource modifiers applied). Raises ModifierError when a
        modifier cannot apply to it."""
        notes: list[str] = []
        if self.prepared is not None and data is None:
            obj = json.loads(json.dumps(self.prepared))
        else:
            obj = sanitize(self.group_resource, json.loads(data or self.data), self.options, notes)
        modifiers = self.options.modifiers if self.options is not None else None
        if modifiers:
            obj, applied = modifiers.apply(self.group_resource, self.source_namespace, obj)
            notes += applied
        return obj, notes


@dataclass
class Group:
    group_resource: str
    items: list[PlannedItem]


@dataclass
class Plan:
    groups: list[Group] = field(default_factory=list)
    sanitize_options: SanitizeOptions | None = None
    notes: list[str] = field(default_factory=list)  # log lines: what was left out and why
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(g.items) for g in self.groups)

    def group(self, group_resource: str) -> Group | None:
        return next((g for g in self.groups if g.group_resource == group_resource), None)


def _skip_reason(gr: str, obj: dict, options: RestoreOptions) -> str | None:
    if gr in options.not_creatable:
        return not_creatable_reason(gr)
    found = control_plane.reason(gr, obj, options.included or frozenset())
    if found:
        return found
    meta = obj.get("metadata") or {}
    if gr == "pods":
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return "pods that had finished"
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            return "mirror pods (their kubelet makes them)"
    elif gr == "jobs.batch" and (obj.get("status") or {}).get("completionTime"):
        return "Jobs that had completed"
    elif gr == "configmaps" and meta.get("name") == "kube-root-ca.crt":
        return "kube-root-ca.crt ConfigMaps (each cluster publishes its own CA)"
    elif gr == "secrets" and is_legacy_token_secret(obj):
        return "service-account token secrets (the target's token controller makes them)"
    return None


class _Planner:
    def __init__(self, contents: Contents, options: RestoreOptions):
        self.contents = contents
        self.options = options
        self.skipped: Counter = Counter()
        # key -> (apiVersion, kind, a claim's volumeName or a volume's reclaim policy)
        self.chosen: dict[Key, tuple[str, str, str]] = {}
        self.namespace_objects: dict[str, Key] = {}
        self.shared: dict[tuple, tuple] = {}  # one (apiVersion, kind, "") per type

    def raw(self, key: Key) -> bytes | None:
        data = self.contents.items.get(key)
        if data is None:  # only a versioned copy: use the first one
            copies = self.contents.versions.get(key) or {}
            data = next(iter(copies.values()), None)
        return data

    def load(self, key: Key) -> dict | None:
        data = self.raw(key)
        return None if data is None else json.loads(data)

    def keys(self):
        yield from self.contents.items
        for key in self.contents.versions:
            if key not in self.contents.items:
                yield key

    def consider(self, key: Key, related: bool = False) -> bool:
        obj = self.load(key)
        if obj is None:
            return False
        gr = key[0]
        if not related:
            if not self.options.allows_type(gr):
                return False
            chosen = self.options.chosen
            if (
                chosen is not None
                and (f"{obj.get('apiVersion')}/{obj.get('kind')}", key[1], key[2]) not in chosen
            ):
                return False
            labels = (obj.get("metadata") or {}).get("labels")
            if self.options.selector and not selector_matches(self.options.selector, labels):
                return False
        elif gr in self.options.excluded:
            return False
        reason = _skip_reason(gr, obj, self.options)
        if reason:
            self.skipped[reason] += 1
            return False
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        extra = ""
        if gr == "persistentvolumeclaims":
            extra = spec.get("volumeName") or ""
        elif gr == "persistentvolumes":
            extra = spec.get("persistentVolumeReclaimPolicy") or ""
        found = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), extra)
        # one tuple (and strings) per type, not per item (the volume names differ)
        self.chosen[key] = self.shared.setdefault(found, found) if not extra else found
        return True

    def run(self) -> Plan:
        options = self.options
        cluster_keys: list[Key] = []
        for key in self.keys():
            gr, ns, _name = key
            if gr in NEVER_RESTORED:
                self.skipped[f"{gr} (never restored)"] += 1
            elif gr == "namespaces":
                self.namespace_objects[key[2]] = key
            elif not options.chooses(ns, key[2]):
                continue
            elif ns:
                if options.namespaces.allows(ns) and options.allows_type(gr):
                    self.consider(key)
            else:
                cluster_keys.append(key)
        self._cluster(cluster_keys)
        reprovisioned = self._volumes()
        return self._build(reprovisioned)

    def _cluster(self, keys: list[Key]) -> None:
        mode, options = self.options.cluster_resources, self.options
        if mode == "never":
            return
        granular = options.chosen is not None  # the chosen ones, then what they need
        if granular or mode == "always" or options.namespaces.selects_everything:
            left_out = 0
            for key in keys:
                if key[0] != "persistentvolumes" or options.restore_pvs:
                    self.consider(key)
                else:
                    left_out += 1
            if not granular:  # a granular restore counts only its claims' volumes, below
                self._pvs_left_out(left_out)
                return
        # auto with a namespace filter: only what the restored items need
        for gr in sorted({key[0] for key in self.chosen if key[1]}):
            self.consider((CRD, "", gr), related=True)
        bound = [
            ("persistentvolumes", "", volume)
            for (gr, _ns, _name), (_v, _k, volume) in list(self.chosen.items())
            if gr == "persistentvolumeclaims" and volume
        ]
        if not options.restore_pvs:
            self._pvs_left_out(len(set(bound)))
            return
        for pv in bound:
            if pv not in self.chosen:
                self.consider(pv, related=True)

    def _pvs_left_out(self, count: int) -> None:
        """Velero restores PVs unless told not to; the console only when asked
        (``unlike_velero.py`` says why): the log and the preview count them."""
        if count:
            self.skipped[
                "PersistentVolumes: Restore persistent volumes is off (Velero restores them "
                "unless told not to; their claims say what that means for them)"
            ] += count

    def _volumes(self) -> frozenset[str]:
        """Volumes with reclaim policy Delete are provisioned anew, not restored."""
        gone = {
            key for key, (_v, _k, policy) in self.chosen.items()
            if key[0] == "persistentvolumes" and policy == "Delete"
        }  # fmt: skip
        for key in gone:
            del self.chosen[key]
        if gone:
            self.skipped[
                "PersistentVolumes with reclaim policy Delete (their claims get new volumes "
                "from the target's provisioner)"
            ] += len(gone)
        return frozenset(key[2] for key in gone)

    def _namespaces(self) -> dict[str, dict]:
        """Target namespace -> the Namespace object to create (from the backup's, if any)."""
        options = self.options
        wanted: dict[str, str] = {}
        for _gr, ns, _name in self.chosen:
            if ns:
                wanted.setdefault(options.sanitize.target(ns), ns)
        if options.cluster_resources != "never" and options.allows_type("namespaces"):
            for ns, key in self.namespace_objects.items():
                if not options.namespaces.allows(ns):
                    continue
                if options.chosen is not None and ("v1/Namespace", "", ns) not in options.chosen:
                    continue  # a granular restore: only namespaces chosen or needed
                labels = ((self.load(key) or {}).get("metadata") or {}).get("labels")
                if not options.selector or selector_matches(options.selector, labels):
                    wanted.setdefault(options.sanitize.target(ns), ns)
        found = {}
        for target, source in wanted.items():
            key = self.namespace_objects.get(source)
            obj = (self.load(key) if key else None) or {}
            obj.update(apiVersion="v1", kind="Namespace")
            obj.setdefault("metadata", {})["name"] = source
            found[target] = obj
        return found

    def _source(self, key: Key) -> tuple[bytes | int, ItemStore | None]:
        """Where a planned item's bytes are: their position in the store (the main copy),
        or the bytes of its only (versioned) copy."""
        items = self.contents.items
        if isinstance(items, ItemStore) and key in items:
            return items.position(key), items
        return self.raw(key) or b"", None

    def _build(self, reprovisioned: frozenset[str]) -> Plan:
        options = self.options.sanitize
        if reprovisioned:
            options = SanitizeOptions(**{**options.__dict__, "reprovisioned_pvs": reprovisioned})
        groups: dict[str, list[PlannedItem]] = {}
        versions = self.contents.versions
        namespaces = self._namespaces()
        targets: dict[str, str] = {}  # one string per target namespace, not one per item
        chosen, self.chosen = self.chosen, {}  # emptied as the items are made
        while chosen:
            key, (api_version, kind, _extra) = chosen.popitem()
            gr, ns, name = key
            copies = versions.get(key)
            target = targets.get(ns)
            if target is None:
                target = targets[ns] = options.target(ns)
            source, store = self._source(key)
            item = PlannedItem(
                gr, ns, target, name, api_version, kind, source, options,
                alternates=dict(copies) if copies else None, store=store,
            )  # fmt: skip
            groups.setdefault(gr, []).append(item)
        for target, obj in namespaces.items():
            prepared = sanitize("namespaces", obj, options)
            item = PlannedItem(
                "namespaces", "", "", target, "v1", "Namespace", options=options, prepared=prepared
            )
            groups.setdefault("namespaces", []).append(item)
        plan = Plan(sanitize_options=options)
        for gr in sorted(groups, key=order_key):
            items = sorted(groups[gr], key=lambda i: (i.namespace, i.name))
            plan.groups.append(Group(gr, items))
        for reason, count in sorted(self.skipped.items()):
            plan.notes.append(f"Left out {count} {reason}.")
        return plan


def plan_restore(contents: Contents, options: RestoreOptions) -> Plan:
    """The restore's plan. Raises ValueError (json) only for an item that is not JSON."""
    return _Planner(contents, options).run()


def item_path_key(item: PlannedItem) -> str:
    """``ns/name`` or ``name``, as Velero's resource lists write items."""
    return f"{item.namespace}/{item.name}" if item.namespace else item.name
