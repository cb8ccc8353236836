"""What the worker nodes change on this machine, and how `down` undoes it.

Before the first node starts, :func:`remember_host_state` records the sysctls that the
kubelet and the CNI bridge plugin change (``net.ipv4.ip_forward``, ``vm.overcommit_memory``,
``kernel.panic`` ...) and the iptables chains that exist. :func:`clean` (after every node
process is stopped) unmounts whatever is mounted under ``.devenv/nodes``, deletes our pod
bridges, the iptables chains that appeared (KUBE-*, CNI-*), our cgroups and restores the
sysctls; :func:`leftovers` lists what is still there (empty after a clean `down`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from . import config

SYSCTLS = (
    "net.ipv4.ip_forward",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
CHAIN_PREFIXES = ("KUBE-", "CNI-")
TABLES = ("filter", "nat", "mangle", "raw")
IPTABLES = ("iptables", "ip6tables")
CGROUP_FS = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "palette-devenv-"
BRIDGE_PREFIX = "palette-"


def nodes_dir() -> Path:
    return config.STATE_DIR / "nodes"


def _state_file() -> Path:
    return nodes_dir() / "host-state.json"


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _chains(tool: str, table: str) -> list[str]:
    out = _run([tool, "-w", "-t", table, "-S"]).stdout
    return [line.split()[1] for line in out.splitlines() if line.startswith("-N ")]


def remember_host_state() -> dict:
    """Record the machine's state before any node changes it (once: a later `up` keeps the
    first record, which `down` restores and then removes)."""
    path = _state_file()
    if path.exists():
        return json.loads(path.read_text())
    state = {
        "sysctls": {
            k: _sysctl_path(k).read_text().strip() for k in SYSCTLS if _sysctl_path(k).exists()
        },
        "chains": {f"{tool} {t}": _chains(tool, t) for tool in IPTABLES for t in TABLES},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2) + "\n")
    return state


def _hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 controllers, and the v2 one of a hybrid setup)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, right = line.split(" - ", 1)
        if right.split()[0] in ("cgroup", "cgroup2"):
            found.append(Path(_unescape(left.split()[4])))
    return found


def make_cgroup_root(name: str) -> None:
    """Create the kubelet's ``cgroupRoot`` in every v1 hierarchy (the kubelet wants it to
    exist); a new cpuset cgroup gets its parent's cpus and mems."""
    for h in _hierarchies():
        if h.name == "unified" or not str(h).startswith(str(CGROUP_FS)):
            continue
        path = h / name.strip("/")
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((h / knob).read_text())


def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape")


def our_mounts() -> list[str]:
    root = str(nodes_dir().resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == root or point.startswith(root + "/"):
            mounts.append(point)
    return mounts


def our_bridges() -> list[str]:
    out = _run(["ip", "-o", "link", "show", "type", "bridge"]).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n.startswith(BRIDGE_PREFIX)]


def our_chains(before: dict | None = None) -> dict[tuple[str, str], list[str]]:
    found = {}
    for tool in IPTABLES:
        for table in TABLES:
            old = set((before or {}).get(f"{tool} {table}", []))
            new = [
                ch for ch in _chains(tool, table) if ch.startswith(CHAIN_PREFIXES) and ch not in old
            ]
            if new:
                found[(tool, table)] = new
    return found


def our_cgroups() -> list[str]:
    """Our kubelets' cgroup roots (a kubelet's own ``kubepods`` lives below its root; one at
    a hierarchy's top would be another Kubernetes's, never ours to remove)."""
    found = []
    for h in _hierarchies():
        with contextlib.suppress(OSError):
            found += [
                str(p) for p in h.iterdir() if p.is_dir() and p.name.startswith(CGROUP_PREFIX)
            ]
    return found


def _remove_cgroup(path: Path) -> None:
    found = [Path(d) for d, _dirs, _files in os.walk(path)]  # a vanished one is skipped
    for sub in sorted((p for p in found if p != path), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def _pids_in_cgroup(path: Path) -> set[int]:
    """Every process in ``path`` and below. The kubelet removes pod cgroups while we
    walk them: a directory gone midway is skipped (os.walk ignores it), not an error."""
    pids = set()
    for directory, _dirs, files in os.walk(path):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError, ValueError):
                text = Path(directory, "cgroup.procs").read_text()
                pids |= {int(x) for x in text.split()}
    return pids


def kill_cgroup_processes(name: str, timeout: float = 10) -> int:
    """SIGKILL every process in the cgroup ``name`` (all hierarchies) until none is left."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set()
        for h in _hierarchies():
            if (h / name.strip("/")).is_dir():
                pids |= _pids_in_cgroup(h / name.strip("/"))
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.1)
    return len(killed)


def processes_mentioning(text: str) -> list[int]:
    """Processes of devenv's own programs (their binary lives in devenv's build cache) whose
    command line contains ``text``: a shim names its containerd socket."""
    cache = str(config.CACHE_DIR) + "/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (proc / "cmdline").read_bytes() and os.readlink(
                proc / "exe"
            ).startswith(cache):
                found.append(int(proc.name))
    return found


def kill_processes_mentioning(text: str, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    killed = 0
    while time.monotonic() < deadline:
        pids = processes_mentioning(text)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.1)
    return killed


def _delete_chains(chains: dict[tuple[str, str], list[str]]) -> None:
    for (tool, table), names in chains.items():
        ours = set(names)
        # First the jumps into our chains from any other chain, then the chains themselves.
        for line in _run([tool, "-w", "-t", table, "-S"]).stdout.splitlines():
            args = shlex.split(line)
            if len(args) > 2 and args[0] == "-A" and args[1] not in ours:
                if "-j" in args and args[args.index("-j") + 1] in ours:
                    _run([tool, "-w", "-t", table, "-D", *args[1:]])
        for flag in ("-F", "-X"):
            for name in names:
                _run([tool, "-w", "-t", table, flag, name])


def clean(log=print) -> list[str]:
    """Undo what the nodes did to this machine (call after their processes stopped); return
    what is left (empty if everything went)."""
    state = json.loads(_state_file().read_text()) if _state_file().exists() else {}
    for _ in range(5):
        mounts = our_mounts()
        if not mounts:
            break
        for point in sorted(mounts, key=lambda p: -p.count("/")):
            if _run(["umount", point]).returncode != 0:
                _run(["umount", "-l", point])
    for bridge in our_bridges():
        for line in _run(["ip", "-o", "link", "show", "master", bridge]).stdout.splitlines():
            _run(["ip", "link", "del", line.split(":")[1].strip().split("@")[0]])
        _run(["ip", "link", "del", bridge])
    if "chains" in state:  # without the record of what was there before, touch none
        _delete_chains(our_chains(state["chains"]))
    deadline = time.monotonic() + 10
    while our_cgroups() and time.monotonic() < deadline:
        for cg in our_cgroups():  # a killed task may take a moment to leave its cgroup
            _remove_cgroup(Path(cg))
        time.sleep(0.2)
    for key, value in state.get("sysctls", {}).items():
        with contextlib.suppress(OSError):
            if _sysctl_path(key).read_text().strip() != value:
                _sysctl_path(key).write_text(value + "\n")
    left = leftovers(state)
    if not left:
        _state_file().unlink(missing_ok=True)
    else:
        log("left behind by the nodes:\n  " + "\n  ".join(left))
    return left


def leftovers(state: dict | None = None) -> list[str]:
    """What of the nodes is still on this machine: mounts, bridges, chains, cgroups, sysctls."""
    if state is None:
        state = json.loads(_state_file().read_text()) if _state_file().exists() else {}
    left = [f"process {pid}" for pid in processes_mentioning(str(nodes_dir()))]
    left += [f"mount {m}" for m in our_mounts()]
    left += [f"bridge {b}" for b in our_bridges()]
    if "chains" in state:
        for (tool, table), names in our_chains(state["chains"]).items():
            left += [f"{tool} -t {table} chain {n}" for n in names]
    left += [f"cgroup {c}" for c in our_cgroups()]
    for key, value in state.get("sysctls", {}).items():
        with contextlib.suppress(OSError):
            now = _sysctl_path(key).read_text().strip()
            if now != value:
                left.append(f"sysctl {key}={now} (was {value})")
    return left
