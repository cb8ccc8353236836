"""Objects that are state of a cluster's control plane, not of the applications on it.

A restore leaves these out by default, as Velero leaves out nodes and events: the
target's API server and controllers make their own, and a copy from another cluster
would fight them (13,000 IPAddress records of cluster A restored into cluster B
would contradict B's Service IP allocator). Each rule is listed here and in the
README; a restore that names the resource type in its include list keeps it
(``kept``), since the person asked for it.

``reason(group_resource, obj)`` says why one object is left out, or None.
``not_creatable(types)`` lists the served types that cannot be created at all
(no ``create`` verb, such as ``componentstatuses``): a backup keeps them for
reference, a restore skips them with that reason and never counts them failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from backups.engine.kube.discovery import ResourceType

ENDPOINT_MANAGERS = {
    "endpoints": ("endpoints.kubernetes.io/managed-by", {"endpoint-controller"}),
    "endpointslices.discovery.k8s.io": (
        "endpointslice.kubernetes.io/managed-by",
        {"endpointslice-controller.k8s.io", "endpointslicemirroring-controller.k8s.io"},
    ),
}
CONTROL_PLANE_NAMESPACES = frozenset(("kube-system", "kube-node-lease"))
APF_AUTOUPDATE = "apf.kubernetes.io/autoupdate-spec"
APISERVICE_AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _managed_endpoints(gr: str) -> Callable[[dict], bool]:
    key, managers = ENDPOINT_MANAGERS[gr]
    return lambda obj: _labels(obj).get(key) in managers


def _always(obj: dict) -> bool:
    return True


@dataclass(frozen=True)
class Rule:
    group_resource: str
    applies: Callable[[dict], bool]
    reason: str  # completes "Left out N ..."; also shown in the README and the wizard


RULES: tuple[Rule, ...] = (
    Rule(
        "ipaddresses.networking.k8s.io",
        _always,
        "IPAddresses (the API server's record of allocated Service IPs)",
    ),
    Rule(
        "servicecidrs.networking.k8s.io",
        _always,
        "ServiceCIDRs (the API server's Service IP ranges)",
    ),
    Rule(
        "certificatesigningrequests.certificates.k8s.io",
        _always,
        "CertificateSigningRequests (signed for the source cluster's CA)",
    ),
    Rule(
        "leases.coordination.k8s.io",
        lambda obj: (obj.get("metadata") or {}).get("namespace") in CONTROL_PLANE_NAMESPACES,
        "Leases in kube-system and kube-node-lease (held by the control plane and the nodes)",
    ),
    Rule(
        "apiservices.apiregistration.k8s.io",
        lambda obj: bool(_labels(obj).get(APISERVICE_AUTOMANAGED)),
        "APIServices that the API server manages",
    ),
    Rule(
        "endpoints",
        _managed_endpoints("endpoints"),
        "endpoints managed by the endpoint controllers (made again from the Services)",
    ),
    Rule(
        "endpointslices.discovery.k8s.io",
        _managed_endpoints("endpointslices.discovery.k8s.io"),
        "endpointslices.discovery.k8s.io managed by the endpoint controllers (made again "
        "from the Services)",
    ),
    Rule(
        "flowschemas.flowcontrol.apiserver.k8s.io",
        lambda obj: _annotations(obj).get(APF_AUTOUPDATE) == "true",
        "FlowSchemas that the API server keeps up to date itself",
    ),
    Rule(
        "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io",
        lambda obj: _annotations(obj).get(APF_AUTOUPDATE) == "true",
        "PriorityLevelConfigurations that the API server keeps up to date itself",
    ),
    Rule(
        "volumesnapshotcontents.snapshot.storage.k8s.io",
        _always,
        "VolumeSnapshotContents (bound to the source cluster's storage; restored "
        "VolumeSnapshots get their own)",
    ),
)
_BY_TYPE = {rule.group_resource: rule for rule in RULES}
KINDS = tuple(rule.group_resource for rule in RULES)


def reason(group_resource: str, obj: dict, kept: frozenset[str] | set[str] = frozenset()) -> str:
    """Why ``obj`` is left out as control-plane state ("" to restore it). ``kept``: the
    types the restore names explicitly in its include list."""
    rule = _BY_TYPE.get(group_resource)
    if rule is None or group_resource in kept or not rule.applies(obj):
        return ""
    return rule.reason


def not_creatable(types: Iterable[ResourceType]) -> set[str]:
    """The group-resources served without the ``create`` verb (read-only kinds)."""
    return {t.group_resource for t in types if t.verbs and "create" not in t.verbs}


def not_creatable_reason(group_resource: str) -> str:
    return (
        f"{group_resource} (the cluster does not create this kind: it is kept in the "
        "backup for reference only)"
    )


def reference_only_note(types: Iterable[ResourceType]) -> str:
    """The backup log's line naming the kinds it keeps for reference only ("" if none)."""
    kinds = sorted(not_creatable(types))
    if not kinds:
        return ""
    return (
        "Kept for reference only (the cluster does not create these kinds, so a restore "
        f"skips them): {', '.join(kinds)}."
    )
