"""`down`'s machine cleanup (devenv.nodeclean) on real mounts, a real bridge, real iptables
chains, real cgroups and a real process, all under test-only names, so that the running
nodes of parallel sessions are not touched. (test_nodes_teardown.py checks the real nodes.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devenv import config, nodeclean

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts, bridges and iptables need root"),
]

TAG = f"ptest{os.getpid() % 10000}"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "STATE_DIR", tmp_path)
    monkeypatch.setattr(nodeclean, "BRIDGE_PREFIX", f"{TAG}-")
    monkeypatch.setattr(nodeclean, "CGROUP_PREFIX", f"{TAG}-")
    monkeypatch.setattr(nodeclean, "CHAIN_PREFIXES", (f"{TAG.upper()}-",))
    # The machine's sysctls stay out of it (the real nodes may have changed them right now).
    monkeypatch.setattr(nodeclean, "SYSCTLS", ())
    monkeypatch.setattr(nodeclean, "IPTABLES", ("iptables",))
    return tmp_path


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def test_clean_removes_mounts_bridge_chains_cgroups_and_processes(scratch):
    state = nodeclean.remember_host_state()
    assert nodeclean._state_file().exists()
    chain = f"{TAG.upper()}-CHAIN"
    bridge = f"{TAG}-0"
    cgroup = f"/{TAG}-a"
    nested = scratch / "nodes" / "a" / "run" / "netns"
    nested.mkdir(parents=True)
    sleeper = None
    try:
        _sh("mount", "-t", "tmpfs", "tmpfs", str(scratch / "nodes" / "a" / "run"))
        (scratch / "nodes" / "a" / "run" / "inner").mkdir()
        _sh("mount", "-t", "tmpfs", "tmpfs", str(scratch / "nodes" / "a" / "run" / "inner"))
        _sh("ip", "link", "add", bridge, "type", "bridge")
        _sh("iptables", "-w", "-t", "filter", "-N", chain)
        _sh("iptables", "-w", "-t", "filter", "-A", "FORWARD", "-s", "10.253.0.0/24", "-j", chain)
        nodeclean.make_cgroup_root(cgroup)
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pids = Path("/sys/fs/cgroup/pids") / cgroup.strip("/") / "pod1"
        pids.mkdir()
        (pids / "cgroup.procs").write_text(str(sleeper.pid))

        found = nodeclean.leftovers(state)
        assert len([f for f in found if f.startswith("mount ")]) == 2
        assert f"bridge {bridge}" in found
        assert f"iptables -t filter chain {chain}" in found
        assert any(f.startswith(f"cgroup /sys/fs/cgroup/pids/{TAG}-a") for f in found)

        assert nodeclean.kill_cgroup_processes(cgroup) == 1
        assert sleeper.wait(timeout=10) == -9
        assert nodeclean.clean(log=lambda *_: None) == []
        assert nodeclean.leftovers(state) == []
        assert not nodeclean._state_file().exists()
        rules = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True)
        assert chain not in rules.stdout
    finally:
        if sleeper and sleeper.poll() is None:
            sleeper.kill()
        for point in (nested.parent / "inner", nested.parent):
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(
            ["iptables", "-w", "-D", "FORWARD", "-s", "10.253.0.0/24", "-j", chain],
            capture_output=True,
        )
        subprocess.run(["iptables", "-w", "-X", chain], capture_output=True)
        for path in Path("/sys/fs/cgroup").glob(f"*/{TAG}-a"):
            nodeclean._remove_cgroup(path)


def test_remembered_state_is_kept_from_the_first_up(scratch):
    first = nodeclean.remember_host_state()
    nodeclean._state_file().write_text(json.dumps({**first, "marker": 1}))
    assert nodeclean.remember_host_state()["marker"] == 1


def test_without_a_record_of_the_machine_no_chain_is_touched(scratch):
    """A machine whose own Kubernetes made KUBE-* chains keeps them when `down` finds no
    record of what was there before our nodes started."""
    chain = f"{TAG.upper()}-FOREIGN"
    _sh("iptables", "-w", "-t", "filter", "-N", chain)
    try:
        assert not nodeclean._state_file().exists()
        nodeclean.clean(log=lambda *_: None)
        rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
        assert f"-N {chain}" in rules
    finally:
        subprocess.run(["iptables", "-w", "-X", chain], capture_output=True)
