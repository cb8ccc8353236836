"""A restore's options, from its request: filters resolved against the target and the backup.

``build_options(request, types, archived)`` turns a ``RestoreRequest`` into a
``RestoreOptions``: the namespace filter (include/exclude with ``*`` globs, on the
backup's namespace names), resource names as a user types them (``deploy``,
``configmaps``, ``widgets``) resolved to group-resources against the target
cluster's types or, for custom resources whose definition the restore brings,
the archive's folders; the label selector; the namespace mapping (checked: each
target must be a valid namespace name); the resource modifiers (``modifiers.py``);
the target's types that cannot be created (``control_plane.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backups.engine import control_plane
from backups.engine.filters import (
    FilterError,
    NamespaceFilter,
    parse_selector,
    resolve_resources,
    selector_matches,  # noqa: F401 (callers import it from here too)
    validate_selector,
)
from backups.engine.kube.discovery import ResourceType
from backups.engine.restore import modifiers
from backups.engine.restore.sanitize import SanitizeOptions

_NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


@dataclass
class RestoreOptions:
    namespaces: NamespaceFilter
    sanitize: SanitizeOptions
    cluster_resources: str = "auto"  # auto | always | never
    restore_pvs: bool = False
    included: set[str] | None = None  # group-resources; None = all
    excluded: set[str] = field(default_factory=set)
    selector: dict = field(default_factory=dict)
    # types the target serves without the create verb (``control_plane.not_creatable``)
    not_creatable: set[str] = field(default_factory=set)
    # a granular restore's items: (type, namespace, name); None: all the filters allow
    chosen: frozenset[tuple[str, str, str]] | None = None

    def chooses(self, namespace: str, name: str) -> bool:
        """Whether an item at ``namespace``/``name`` may be one of the chosen ones."""
        return self.chosen is None or (namespace, name) in self._chosen_places

    def __post_init__(self):
        self._chosen_places = {(ns, name) for _type, ns, name in self.chosen or ()}

    def allows_type(self, group_resource: str) -> bool:
        if group_resource in self.excluded:
            return False
        return self.included is None or group_resource in self.included


def resolve_names(names, types: list[ResourceType], archived: set[str]):
    """User-typed resource names as group-resources: against the target's types,
    else against the archive's folders (a custom resource whose definition the
    restore brings). Returns (set or None for all, names matching nothing)."""
    cleaned = [n.strip() for n in names or [] if n and n.strip()]
    if not cleaned or "*" in cleaned:
        return None, []
    found: set[str] = set()
    unknown: list[str] = []
    for name in cleaned:
        resolved, missing = resolve_resources([name], types)
        if resolved:
            found |= resolved
            continue
        lower = name.lower()
        matches = sorted(gr for gr in archived if lower in (gr, gr.split(".", 1)[0]))
        if matches:
            found.add(matches[0])
        else:
            unknown += missing
    return found, unknown


def chosen_items(spec) -> frozenset[tuple[str, str, str]] | None:
    """A granular restore's items as a set, None when the restore has none chosen."""
    items = frozenset((str(t), str(ns), str(n)) for t, ns, n in spec.chosen_items or ())
    return items or None


def archive_keep(spec):
    """What of the archive a granular restore needs to hold (``read_contents``'s ``keep``):
    the chosen items' namespaces and the cluster-scoped items. None: everything."""
    if not spec.chosen_items:
        return None
    namespaces = {namespace for _type, namespace, _name in spec.chosen_items}
    return lambda _group_resource, namespace: not namespace or namespace in namespaces


def check_options(spec) -> dict[str, str]:
    """The namespace mapping, cleaned; FilterError for a mapping to an invalid
    namespace name, an invalid label selector or resource modifiers that cannot be
    used. Needs no cluster."""
    mapping = {
        str(k).strip(): str(v).strip()
        for k, v in (spec.namespace_mapping or {}).items()
        if str(k).strip() and str(v).strip()
    }
    for source, target in sorted(mapping.items()):
        if len(target) > 63 or not _NAMESPACE_NAME.match(target):
            raise FilterError(
                f"The namespace mapping {source} -> {target} names no valid namespace: a "
                "namespace name is at most 63 lower-case letters, digits and '-', starting "
                "and ending with a letter or digit."
            )
    validate_selector(spec.label_selector)
    modifiers.parse(spec.resource_modifiers)
    return mapping


def build_options(request, types: list[ResourceType], archived: set[str]):
    """RestoreOptions from a RestoreRequest, and warnings. Raises FilterError (a bad
    label selector or namespace mapping), whose message says what to fix."""
    warnings = []
    spec = request.spec
    included, unknown_in = resolve_names(spec.include_resources, types, archived)
    excluded, unknown_ex = resolve_names(spec.exclude_resources, types, archived)
    for name in unknown_in + unknown_ex:
        warnings.append(
            f"The resource name {name!r} matches no resource type of the target cluster or "
            "of the backup; ignored."
        )
    mapping = check_options(spec)
    options = RestoreOptions(
        namespaces=NamespaceFilter.of(spec.include_namespaces, spec.exclude_namespaces),
        sanitize=SanitizeOptions(
            backup_name=request.backup_name,
            restore_name=request.name,
            namespace_mapping=mapping,
            preserve_node_ports=bool(spec.preserve_node_ports),
            pvs_left_out=not spec.restore_pvs,
            modifiers=modifiers.parse(spec.resource_modifiers) or None,
        ),
        cluster_resources=spec.cluster_resources or "auto",
        restore_pvs=bool(spec.restore_pvs),
        included=included,
        excluded=excluded or set(),
        selector=parse_selector(spec.label_selector),
        not_creatable=control_plane.not_creatable(types),
        chosen=chosen_items(spec),
    )
    return options, warnings
