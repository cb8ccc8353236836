"""Telling a lost node from a broken stream: why a mover's exec stopped.

When the stream of a copy breaks or goes still, the cause is often not the mover but the
node under it: its kubelet crashed, the machine went away, the network split. The Node
object says so only after the control plane's grace period (about 40 seconds without a
heartbeat), long after the stream noticed, so ``node_lost`` asks the node itself too: a
short exec of ``true`` into the same container goes through the same kubelet, and fails
(refused, or silent) when that kubelet is gone.

``node_problem`` (from the Node object) and ``probe_verdict`` (from the probe) are the
pure parts, unit-tested; the sentences they return are the volume's reason.
"""

from __future__ import annotations

from collections.abc import Callable

from backups.engine.kube.api import ApiError, ClusterUnreachable
from backups.engine.kube.exec import ExecError, ExecResult

PROBE_TIMEOUT = 10.0  # seconds the probe may take before the node counts as silent
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
# What the API server says when it cannot reach a kubelet (dial, TLS, reset, silence).
_TRANSPORT_WORDS = (
    "dialing backend",
    "dial tcp",
    "connection refused",
    "connection reset",
    "no route to host",
    "i/o timeout",
    "tls handshake",
    "broken pipe",
    "eof",
    "stopped answering",
    "could not connect",
)


def _ready_condition(node: dict) -> dict | None:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return None


def node_problem(node: dict | None, name: str) -> str:
    """Why node ``name`` cannot be running the mover's work, from its Node object
    (None when it no longer exists); "" when it looks Ready."""
    if node is None:
        return f"The node {name} that ran the mover was removed from the cluster (node lost)."
    taints = {t.get("key") for t in (node.get("spec") or {}).get("taints") or []}
    ready = _ready_condition(node)
    status = (ready or {}).get("status")
    if status == "True" and UNREACHABLE_TAINT not in taints:
        return ""
    said = (ready or {}).get("message") or (ready or {}).get("reason") or ""
    since = (ready or {}).get("lastHeartbeatTime") or ""
    detail = "; ".join(part for part in (said, f"last heartbeat {since}" if since else "") if part)
    detail = f" ({detail})" if detail else ""
    if status == "False":
        return f"The node {name} that ran the mover is not ready{detail}."
    return (
        f"The node {name} that ran the mover stopped answering: its kubelet no longer "
        f"reports to the control plane{detail} (node lost)."
    )


def probe_verdict(name: str, outcome: ExecResult | ExecError) -> str:
    """The reason to give when a probe of node ``name`` ended with ``outcome`` (its
    result, or the error it raised); "" when the node answered (the probe ran, whatever
    its exit status, or the failure is not the node's: the container is gone)."""
    if isinstance(outcome, ExecResult):
        if outcome.exit_code != -1:
            return ""
        text = outcome.message
    else:
        text = str(outcome)
    lowered = text.lower()
    if not any(word in lowered for word in _TRANSPORT_WORDS):
        return ""
    return (
        f"The node {name} that ran the mover stopped answering: its kubelet cannot be "
        f"reached ({text.strip().rstrip('.')}) (node lost)."
    )


def node_lost(
    find_node: Callable[[str], dict | None],
    probe: Callable[[], ExecResult],
    name: str,
) -> str:
    """Why the mover's node ``name`` is lost, or "" when it is not (or cannot be told).
    ``find_node`` reads a Node object (None if gone; ``ClusterUnreachable`` when the
    control plane itself is silent, and then nothing is said); ``probe`` runs a trivial command in
    the mover (bounded) through the node's kubelet."""
    if not name:
        return ""
    try:
        problem = node_problem(find_node(name), name)
    except ClusterUnreachable:  # the control plane is not answering: not the node's fault
        return ""
    except ApiError:  # not allowed to read nodes, say: the probe still tells
        problem = ""
    if problem:
        return problem
    try:
        outcome: ExecResult | ExecError = probe()
    except ExecError as exc:
        outcome = exc
    return probe_verdict(name, outcome)
