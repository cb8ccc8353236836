"""A mover's stream that broke because its node was lost says so: from the Node object
(removed, NotReady, Unknown, tainted unreachable) or, while the Node still looks Ready,
from a probe through its kubelet (refused or silent). A refused exec says the server's
message, not every response header."""

from __future__ import annotations

import json

import pytest
import websocket

from backups.engine.kube.api import ApiError, ClusterUnreachable
from backups.engine.kube.exec import ExecError, ExecResult, refusal
from backups.engine.volumes.nodeloss import UNREACHABLE_TAINT, node_lost, node_problem
from backups.engine.volumes.nodeloss import probe_verdict as verdict

NAME = "worker-1"


def node(status="True", message="kubelet is posting ready status", taints=()):
    return {
        "metadata": {"name": NAME},
        "spec": {"taints": [{"key": key, "effect": "NoExecute"} for key in taints]},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": status, "message": message,
                 "lastHeartbeatTime": "2026-12-01T23:50:00Z"},
            ]
        },
    }  # fmt: skip


def test_a_ready_node_is_no_problem():
    assert node_problem(node(), NAME) == ""


def test_a_removed_node_is_lost():
    assert "removed from the cluster" in node_problem(None, NAME)
    assert NAME in node_problem(None, NAME)


def test_an_unknown_node_stopped_answering_with_its_last_heartbeat():
    text = node_problem(node("Unknown", "Kubelet stopped posting node status."), NAME)
    assert "stopped answering" in text and "node lost" in text
    assert "Kubelet stopped posting node status" in text and "2026-12-01T23:50:00Z" in text


def test_a_not_ready_node_says_why():
    text = node_problem(node("False", "container runtime is down"), NAME)
    assert text.startswith(f"The node {NAME} that ran the mover is not ready")
    assert "container runtime is down" in text


def test_the_unreachable_taint_counts_even_before_the_condition_changes():
    assert "stopped answering" in node_problem(node(taints=[UNREACHABLE_TAINT]), NAME)


def test_a_node_without_a_ready_condition_is_not_taken_for_ready():
    bare = {"metadata": {"name": NAME}, "status": {}}
    assert "stopped answering" in node_problem(bare, NAME)


@pytest.mark.parametrize(
    "outcome",
    [
        ExecResult(0, ""),
        ExecResult(2, "tar: short read"),  # the command ran: the kubelet answered
        ExecResult(-1, "", 'container not found ("mover")'),  # the container, not the node
    ],
)
def test_a_probe_that_ran_or_failed_in_the_container_clears_the_node(outcome):
    assert verdict(NAME, outcome) == ""


@pytest.mark.parametrize(
    "outcome",
    [
        ExecResult(
            -1,
            "",
            "Internal error occurred: error dialing backend: dial tcp "
            "10.0.0.7:10250: connect: connection refused",
        ),  # fmt: skip
        ExecError("The exec into ns/palette-mover-x stopped answering."),
        ExecError(
            "The API server refused the exec into ns/p: 500 Internal Server Error: "
            "error dialing backend: EOF."
        ),  # fmt: skip
    ],
)
def test_a_probe_refused_or_silent_means_the_node_stopped_answering(outcome):
    text = verdict(NAME, outcome)
    assert text.startswith(f"The node {NAME} that ran the mover stopped answering")
    assert "node lost" in text and ".." not in text


def _never_probed():
    raise AssertionError("no probe when the Node object already says it")


def test_node_lost_trusts_the_node_object_first():
    assert "removed" in node_lost(lambda _n: None, _never_probed, NAME)
    assert "not ready" in node_lost(lambda _n: node("False"), _never_probed, NAME)


def test_node_lost_probes_a_node_that_still_looks_ready():
    def refused():
        raise ExecError("The exec into ns/p could not connect: [Errno 111] Connection refused")

    assert "stopped answering" in node_lost(lambda _n: node(), refused, NAME)
    assert node_lost(lambda _n: node(), lambda: ExecResult(0, ""), NAME) == ""


def test_node_lost_probes_when_nodes_cannot_be_read():
    def forbidden(_name):
        raise ApiError(403, "Forbidden", 'nodes "worker-1" is forbidden')

    silent = ExecResult(-1, "", "error dialing backend: dial tcp 10.0.0.7:10250: i/o timeout")
    assert "stopped answering" in node_lost(forbidden, lambda: silent, NAME)


def test_node_lost_blames_no_node_when_the_control_plane_is_silent():
    def unreachable(_name):
        raise ClusterUnreachable("https://10.0.0.1:6443 did not answer within 10 seconds.")

    assert node_lost(unreachable, _never_probed, NAME) == ""
    assert node_lost(lambda _n: None, _never_probed, "") == ""  # an unscheduled pod


def test_a_refused_exec_gives_the_status_and_the_servers_message_only():
    body = json.dumps({"kind": "Status", "message": "error dialing backend: connection refused"})
    exc = websocket.WebSocketBadStatusException(
        "Handshake status 500 Internal Server Error -+-+- {'audit-id': 'x'} -+-+- b'...'",
        500, "Internal Server Error", {"audit-id": "x"}, body.encode(),
    )  # fmt: skip
    text = refusal(exc)
    assert text == "500 Internal Server Error: error dialing backend: connection refused"
    plain = websocket.WebSocketBadStatusException("m", 403, "Forbidden", {}, b"pods is forbidden")
    assert refusal(plain) == "403 Forbidden: pods is forbidden"
    assert refusal(websocket.WebSocketBadStatusException("m", 404, None, {}, None)) == "404"
