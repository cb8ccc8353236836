"""What a backup includes: namespaces, resource types, cluster-wide resources, labels.

Pure logic, no I/O, with Velero's semantics (facts from its source, in
the notes below):

* Namespaces: an empty include list (or ``*``) means every namespace; excludes
  win over includes; ``*`` and ``?`` globs are allowed in both.
* Resources: names as a user types them (``deployments.apps``, ``deployments``,
  ``deploy``, ``Deployment``) resolve against the cluster's discovered types;
  a name without a group takes the first match in discovery order (core
  first), as Velero's REST mapper does. Unknown names become warnings.
* Cluster-scoped resources (``cluster_resources``):
  ``always`` lists every cluster-scoped type; ``never`` none; ``auto`` (Velero's
  null) lists them all when the namespace filter selects everything (no
  include and no exclude), and otherwise only the cluster-scoped objects that
  the chosen namespaces need (see ``related``). Namespaces themselves are
  always handled apart (``backup/run.py``): written for the chosen namespaces
  even with ``never``, as Velero does.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from backups.engine.kube.discovery import ResourceType

CORE_EVENTS = {"events", "events.events.k8s.io"}

# Items with this label are left out, as Velero does.
EXCLUDE_LABEL = "velero.io/exclude-from-backup"


class FilterError(ValueError):
    """An option cannot be used; the message says which and why."""


# --- label selectors ------------------------------------------------------------------

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_KEY_RE = re.compile(_KEY + r"\Z")
_VALUE_RE = re.compile(_VALUE + r"\Z")


def _split_requirements(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FilterError("a ')' has no matching '('")
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth:
        raise FilterError("a '(' is not closed")
    parts.append("".join(current).strip())
    return parts


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or len(key.split("/")[-1]) > 63:
        raise FilterError(f"{key!r} is not a valid label key")
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.match(value) or len(value) > 63:
        raise FilterError(f"{value!r} is not a valid label value")
    return value


def parse_selector(text: str) -> dict:
    """A label selector string (``app=shop,tier!=ops,env in (a,b),!legacy``) as a
    Kubernetes LabelSelector object: ``{"matchLabels": {...}, "matchExpressions": [...]}``.

    Empty text gives ``{}``. Raises FilterError for text the API server would refuse.
    """
    text = (text or "").strip()
    if not text:
        return {}
    match_labels: dict[str, str] = {}
    expressions: list[dict] = []
    set_re = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
    for part in _split_requirements(text):
        if not part:
            raise FilterError("it has an empty requirement (two commas in a row?)")
        found = set_re.match(part)
        if found:
            key, op, values = found.groups()
            items = [_check_value(v.strip()) for v in values.split(",")]
            if not any(items):
                raise FilterError(f"'{part}' lists no values")
            expressions.append(
                {
                    "key": _check_key(key),
                    "operator": "In" if op == "in" else "NotIn",
                    "values": sorted(set(items)),
                }
            )
        elif "!=" in part:
            key, value = (s.strip() for s in part.split("!=", 1))
            expressions.append(
                {"key": _check_key(key), "operator": "NotIn", "values": [_check_value(value)]}
            )
        elif "=" in part:
            key, value = (s.strip() for s in part.replace("==", "=", 1).split("=", 1))
            _check_key(key)
            if key in match_labels and match_labels[key] != _check_value(value):
                raise FilterError(f"label {key!r} is required to have two different values")
            match_labels[key] = _check_value(value)
        elif part.startswith("!"):
            expressions.append({"key": _check_key(part[1:].strip()), "operator": "DoesNotExist"})
        else:
            expressions.append({"key": _check_key(part), "operator": "Exists"})
    selector: dict = {}
    if match_labels:
        selector["matchLabels"] = match_labels
    if expressions:
        selector["matchExpressions"] = expressions
    return selector


def selector_matches(selector: dict, labels: dict | None) -> bool:
    """Whether ``labels`` satisfy a LabelSelector object (``filters.parse_selector``)."""
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values") or ()
        if op == "In" and (key not in labels or labels[key] not in values):
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def validate_selector(text: str) -> str:
    """The selector text, normalised for the API server; FilterError when invalid."""
    try:
        parse_selector(text)
    except FilterError as exc:
        raise FilterError(f"The label selector {text!r} is not valid: {exc}.") from None
    return ",".join(_split_requirements(text.strip())) if text and text.strip() else ""


# --- namespaces -----------------------------------------------------------------------


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


@dataclass(frozen=True)
class NamespaceFilter:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, include, exclude) -> NamespaceFilter:
        clean = lambda names: tuple(sorted({n.strip() for n in names or [] if n and n.strip()}))  # noqa: E731
        return cls(clean(include), clean(exclude))

    @property
    def includes_all(self) -> bool:
        return not self.include or "*" in self.include

    @property
    def selects_everything(self) -> bool:
        """Velero's IncludeEverything: no include (or ``*``) and no exclude."""
        return self.includes_all and not self.exclude

    @property
    def explicit(self) -> tuple[str, ...] | None:
        """The exact namespaces to list one by one, or None to list across all
        namespaces and filter (no include list, or globs in it)."""
        if self.includes_all or any(_is_glob(n) for n in self.include):
            return None
        return tuple(n for n in self.include if self.allows(n))

    def allows(self, namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.exclude):
            return False
        return self.includes_all or any(
            fnmatch.fnmatchcase(namespace, pattern) for pattern in self.include
        )


# --- resource types -------------------------------------------------------------------


def resolve_resources(names, types: list[ResourceType]) -> tuple[set[str] | None, list[str]]:
    """Map user-typed resource names to group-resources (``deployments.apps``).

    Returns (the set, or None for "all"; names that match nothing). Matching is
    case-insensitive on the plural, the singular, the short names and the kind,
    optionally followed by ``.group``.
    """
    names = [n.strip() for n in names or [] if n and n.strip()]
    if not names or "*" in names:
        return None, []
    found: set[str] = set()
    unknown: list[str] = []
    for name in names:
        match = _match_resource(name.lower(), types)
        if match is None:
            unknown.append(name)
        else:
            found.add(match.group_resource)
    return found, unknown


def _match_resource(name: str, types: list[ResourceType]) -> ResourceType | None:
    for rt in types:
        spellings = {rt.resource, rt.singular, rt.kind.lower(), *rt.short_names} - {""}
        if name in spellings or (rt.group and name in {f"{s}.{rt.group}" for s in spellings}):
            return rt
    return None


@dataclass
class Scope:
    """The filters of one backup, resolved against the cluster's types."""

    namespaces: NamespaceFilter
    cluster_resources: str  # auto | always | never
    selector: str = ""
    included: set[str] | None = None  # group-resources, None = all
    excluded: set[str] = field(default_factory=set)

    def wants_type(self, rt: ResourceType) -> bool:
        """Whether the main collection lists this type (namespaces are apart)."""
        gr = rt.group_resource
        if gr in self.excluded or gr in CORE_EVENTS or gr == "namespaces":
            return False
        if self.included is not None and gr not in self.included:
            return False
        if rt.namespaced:
            return True
        if self.cluster_resources == "always":
            return True
        if self.cluster_resources == "never":
            return False
        return self.namespaces.selects_everything

    @property
    def related_cluster_items(self) -> bool:
        """``auto`` with a namespace filter: cluster-scoped objects come only as
        needed by the chosen namespaces (bound PVs, CRDs of custom resources,
        cluster role bindings of service accounts and their roles)."""
        return self.cluster_resources == "auto" and not self.namespaces.selects_everything

    def wants_related(self, group_resource: str) -> bool:
        """Related cluster items skip the include list; only an explicit exclude drops them."""
        return self.related_cluster_items and group_resource not in self.excluded

    def wants_namespace_objects(self) -> bool:
        if "namespaces" in self.excluded:
            return False
        return self.included is None or "namespaces" in self.included


def build_scope(options, types: list[ResourceType]) -> tuple[Scope, list[str]]:
    """The Scope for a Backup's options, and warnings about names that match nothing."""
    warnings = []
    included, unknown_in = resolve_resources(options.include_resources, types)
    excluded, unknown_ex = resolve_resources(options.exclude_resources, types)
    for name in unknown_in + unknown_ex:
        warnings.append(
            f"The resource name {name!r} matches no resource type this cluster serves; ignored."
        )
    scope = Scope(
        namespaces=NamespaceFilter.of(options.include_namespaces, options.exclude_namespaces),
        cluster_resources=options.cluster_resources or "auto",
        selector=validate_selector(options.label_selector),
        included=included,
        excluded=excluded or set(),
    )
    return scope, warnings
