"""`make devenv-stop` leaves nothing of the worker nodes behind, and `make devenv` brings
them back quickly (issue 11, "done when" 5).

Stopping the nodes kills every pod that parallel test sessions on this machine may be using,
so this runs in CI (one suite at a time, ``CI`` set) or when ``PALETTE_TEST_NODES_DOWN=1``
asks for it; elsewhere it is skipped and says why. It stops only the node pieces (the
clusters' control planes and the stores keep running) and starts them again before it ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devenv.testing import stops_shared_nodes

pytestmark = [
    pytest.mark.integration,
    stops_shared_nodes("stops the nodes other test sessions use"),
]

REPO = Path(__file__).resolve().parents[2]


def test_stopping_the_nodes_leaves_nothing_and_up_brings_them_back(devenv, kube_a):
    from kubernetes import client

    from devenv import cli, config, nodeclean, nodes

    state_file = nodeclean.nodes_dir() / "host-state.json"
    before = json.loads(state_file.read_text())
    assert nodeclean.our_mounts(), "a running node has mounts under .devenv/nodes"
    assert nodeclean.our_bridges(), "a running node with pods has its bridge"

    left = cli.nodes_down(log=lambda *_: None)

    assert left == []
    assert nodeclean.leftovers(before) == []
    # Independently of what devenv thinks is its own:
    assert not nodeclean.processes_mentioning(str(config.STATE_DIR / "nodes"))
    mountinfo = Path("/proc/self/mountinfo").read_text()
    assert str(nodeclean.nodes_dir().resolve()) not in mountinfo
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "palette-a0" not in links and "palette-b0" not in links
    for tool in nodeclean.IPTABLES:
        for table in nodeclean.TABLES:
            rules = subprocess.run([tool, "-w", "-t", table, "-S"], capture_output=True, text=True)
            new = {
                line.split()[1] for line in rules.stdout.splitlines() if line.startswith("-N ")
            } - set(before["chains"][f"{tool} {table}"])
            assert not new, (tool, table, new)
    for key, value in before["sysctls"].items():
        assert nodeclean._sysctl_path(key).read_text().strip() == value, key
    assert not [
        p for p in Path("/sys/fs/cgroup").glob("*/*") if p.name.startswith("palette-devenv-")
    ]
    assert not list(Path("/sys/fs/cgroup").glob("*/kubepods"))

    # `up` again: only the node pieces start, and quickly.
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "devenv", "up"], cwd=REPO, capture_output=True, text=True
    )
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert took < 180, f"`up` after `down` of the nodes took {took:.0f}s"
    node = client.CoreV1Api(kube_a).read_node(nodes.node_name(nodes.CLUSTERS["a"]))
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
