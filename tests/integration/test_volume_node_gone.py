"""The node under a volume copy goes away mid-copy (issue 12, "the node gone"): the backup
ends PartiallyFailed with that volume's reason saying the node was lost, in bounded time,
and nothing temporary is left (no mover pod, claim or snapshot in the cluster, no partial
copy in the store, no mover left running on the node once its kubelet is back).

Two ways a node goes: its kubelet crashes (SIGKILL: the kernel closes its connections,
the stream breaks at once) and it freezes (SIGSTOP: nothing closes and nothing answers,
as when a machine loses power or the network splits; the copy's idle timeout must
notice). Either way the node is brought back as devenv starts it (``nodes.up``) and is
Ready again before the test ends, pass or fail.

Stopping a kubelet breaks exec and logs for every test session using that cluster, so
this runs in CI (one suite at a time, ``CI`` set) or when ``PALETTE_TEST_NODES_DOWN=1``
asks for it; elsewhere it is skipped and says why. Cluster A's node is the one used: the
other volume fault and CSI tests load cluster B's. The kubelet is down for seconds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from backups.engine.storage.layout import Layout
from backups.engine_inputs import operation_label
from backups.jobs import run_and_wait, start_backup
from backups.models import Status, VolumeResult
from devenv.testing import kubectl, stops_shared_nodes, unique, wait_for
from tests.integration.volume_support import (
    BUSYBOX,
    app_objects,
    apply,
    console,
    create_namespace,
    in_pod,
    leftovers,
    namespaces,
    running_pod,
)

pytestmark = [
    pytest.mark.integration,
    stops_shared_nodes("stops a node's kubelet that other test sessions use"),
]

CLUSTER = "a"
DATA_MIB = 400  # enough for the copy to run several seconds on a busy machine
WAIT = 180  # seconds any one step may take before the test gives up on it
SLEEPER = ["sh", "-c", "echo ready >/data/ready; exec sleep 100000"]


class NodeFault:
    """Takes cluster ``CLUSTER``'s kubelet away (``how``: crashed or frozen) and brings it
    back exactly as devenv starts it."""

    def __init__(self, how: str, devenv: dict):
        from devenv import nodes

        self.how, self.devenv = how, devenv
        self.cluster = nodes.CLUSTERS[CLUSTER]
        self.service = nodes.service_name(self.cluster, "kubelet")
        self.down_at: float | None = None
        self.down_for = 0.0
        self.steps: list[str] = []  # what happened while it was away, and when

    def note(self, what: str) -> None:
        if self.down_at is not None:
            self.steps.append(f"{time.monotonic() - self.down_at:.1f}s {what}")

    def take_down(self) -> None:
        from devenv import procs

        pid = procs.running_pid(self.service)
        assert pid, f"{self.service} runs before the fault"
        self.down_at = time.monotonic()
        if self.how == "crashed":
            procs.stop(self.service, sig=signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGSTOP)

    def bring_back(self) -> None:
        from devenv import nodeobjects, nodes, procs

        if self.down_at is None:
            return
        back_from = datetime.now(UTC)
        self.note("bringing it back")
        pid = procs.running_pid(self.service)
        if pid:  # a frozen kubelet thaws
            os.killpg(pid, signal.SIGCONT)
        else:  # a crashed one starts again at once, as devenv starts it (the lock may wait)
            procs.ensure(nodes.FACTORIES["kubelet"](self.cluster), log=self.note)
        self.note("the kubelet runs")
        # Then every piece of the node, as `devenv up` checks them (one at a time with
        # other sessions' `up`: this may wait for theirs).
        with procs.devenv_lock():
            nodes.up(CLUSTER, log=self.note)
        self.note("nodes.up returned")
        name = nodes.node_name(self.cluster)
        nodeobjects.wait_node_ready(self.cluster, name)
        # The Node object stayed Ready all along (its grace period is longer than the
        # fault): the kubelet's heartbeat after the restart shows it is truly back.
        wait_for(lambda: _renewed(self.devenv, name) > back_from, 60,
                 f"the kubelet of {name} to renew its lease")  # fmt: skip
        self.down_for = time.monotonic() - self.down_at
        self.down_at = None


def _renewed(devenv, name: str) -> datetime:
    out = kubectl(devenv, "-n", "kube-node-lease", "get", "lease", name, "-o", "json",
                  cluster=CLUSTER)  # fmt: skip
    stamp = json.loads(out)["spec"]["renewTime"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.fixture
def fault(request, devenv):
    broken = NodeFault(request.param, devenv)
    try:
        yield broken
    finally:
        broken.bring_back()  # even when the test failed half-way
        from devenv import nodes, procs

        kubelet = nodes.FACTORIES["kubelet"](broken.cluster)
        assert procs.running_pid(broken.service) and kubelet.ready(), "the kubelet is back"


def _node_ready(devenv, node: str) -> bool:
    found = json.loads(kubectl(devenv, "get", "node", node, "-o", "json", cluster=CLUSTER))
    return {c["type"]: c["status"] for c in found["status"]["conditions"]}.get("Ready") == "True"


def _mover(devenv, ns, label) -> dict | None:
    out = kubectl(devenv, "-n", ns, "get", "pods", "-l", label, "-o", "json", cluster=CLUSTER)
    items = json.loads(out)["items"]
    return items[0] if items else None


def _mover_tasks(pod_name: str) -> list[str]:
    """Containers of ``pod_name`` that containerd still runs on the node."""
    import subprocess

    from devenv import nodes

    ctr = [*nodes.ctr(nodes.CLUSTERS[CLUSTER]), "-n", "k8s.io"]
    ids = subprocess.run(
        [*ctr, "containers", "ls", "-q", f'labels."io.kubernetes.pod.name"=={pod_name}'],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    tasks = subprocess.run([*ctr, "tasks", "ls"], capture_output=True, text=True, check=True,
                           timeout=60).stdout.splitlines()[1:]  # fmt: skip
    return [line for line in tasks if line.split()[0] in ids and "RUNNING" in line]


def _store_files(root: Path, made) -> list[str]:
    base = root / Layout(made.location.prefix).backup_dir(made.name)
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


@pytest.mark.parametrize("fault", ["crashed", "frozen"], indirect=True)
def test_the_node_gone_mid_copy_fails_its_volume_and_leaves_nothing(
    transactional_db, devenv, tmp_path, monkeypatch, fault
):
    from devenv import nodes

    node = nodes.node_name(fault.cluster)
    assert devenv[f"CLUSTER_{CLUSTER.upper()}_NODE"] == node
    # A frozen node is noticed by the stream's idle timeout: short here, the window too.
    monkeypatch.setattr(settings, "PALETTE_MOVER_IDLE_TIMEOUT", 5)
    _ws, clusters, location = console(devenv, tmp_path)
    ns = unique("gone")
    with namespaces(devenv, (CLUSTER, ns)):
        create_namespace(devenv, CLUSTER, ns)
        apply(devenv, CLUSTER, app_objects(ns, devenv["STORAGE_CLASS_LOCAL"], BUSYBOX,
                                           command=SLEEPER, size="1Gi"))  # fmt: skip
        pod = running_pod(devenv, CLUSTER, ns)
        in_pod(devenv, CLUSTER, ns, pod, "dd", "if=/dev/zero", "of=/data/big", "bs=1M",
               f"count={DATA_MIB}")  # fmt: skip
        row = start_backup(clusters[CLUSTER.upper()], location, include_namespaces=[ns],
                           include_disks=True)  # fmt: skip
        label = f"palette.io/operation={operation_label(row)}"
        seen: dict = {}

        def break_the_node_mid_copy():
            try:

                def copying():
                    volume = VolumeResult.objects.filter(backup=row).first()
                    if volume and volume.state in ("succeeded", "failed", "skipped"):
                        raise AssertionError(f"the copy ended first: {volume.state}")
                    return volume if volume and volume.bytes_done > 0 else None

                volume = wait_for(copying, WAIT, "the copy to be under way")
                mover = _mover(devenv, ns, label)
                seen.update(mover=mover["metadata"]["name"], node=mover["spec"].get("nodeName"))
                fault.take_down()
                seen["bytes_at_fault"] = volume.bytes_done
                # The mover pod goes while the node is away: the clean-up cannot wait
                # for a kubelet to confirm anything.
                wait_for(lambda: _mover(devenv, ns, label) is None, WAIT,
                         "the mover pod to be deleted while its node is away")  # fmt: skip
                seen["gone_while_down"] = True
                fault.note("the mover pod is gone")
            except BaseException as exc:  # noqa: BLE001 (reported by the test's thread)
                seen["error"] = exc
            finally:
                fault.bring_back()

        breaker = threading.Thread(target=break_the_node_mid_copy)
        breaker.start()
        made = run_and_wait(row)
        breaker.join(timeout=2 * WAIT)
        assert "error" not in seen, seen.get("error")
        assert seen["node"] == node, "the mover ran on the node that went"
        assert seen.get("gone_while_down"), "the mover pod was deleted while its node was away"

        assert made.status == Status.PARTIALLY_FAILED, made.log[-2000:]
        volume = VolumeResult.objects.get(backup=made)
        assert volume.state == "failed", volume.reason
        assert seen["bytes_at_fault"] < volume.bytes_total, "the node went mid-copy"
        assert f"The node {node} that ran the mover stopped answering" in volume.reason
        assert "node lost" in volume.reason and "Traceback" not in volume.reason
        assert leftovers(devenv, CLUSTER, made) == []
        assert not any(name.startswith("volumes/") for name in _store_files(tmp_path, made))
        # Back, the kubelet ends what it ran for the pod that is no longer there.
        wait_for(lambda: not _mover_tasks(seen["mover"]), WAIT,
                 f"the node's containers of {seen['mover']} to stop")  # fmt: skip
        assert _node_ready(devenv, node)
        assert running_pod(devenv, CLUSTER, ns, timeout=WAIT) == pod, "the application lived on"
        print(f"\n{fault.how}: kubelet away {fault.down_for:.1f}s ({'; '.join(fault.steps)})")
        print(f"reason: {volume.reason}")
