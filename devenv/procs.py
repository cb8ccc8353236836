"""Start, find and stop the environment's background processes, each tracked by a pid file.

A pid file under ``.devenv/pids/<name>.pid`` holds the pid and the kernel's start time of the
process, so a pid that the system reused for another program is never mistaken for ours. Each
service runs in its own session (process group): stopping it signals that group only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import config


class ServiceError(RuntimeError):
    pass


@dataclass
class Service:
    """A long-running program of the environment."""

    name: str
    argv: list[str]
    port: int
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    start_timeout: float = 90.0

    @property
    def log_path(self) -> Path:
        return config.LOG_DIR / f"{self.name}.log"


_lock_depth = threading.local()


@contextlib.contextmanager
def devenv_lock():
    """One `up`/`down`/etcd restore/component start or stop at a time across processes
    (parallel test sessions may call `up` while another restores a cluster's etcd).
    Re-entrant within a thread: a restore holds it while it starts components."""
    depth = getattr(_lock_depth, "n", 0)
    if depth:
        _lock_depth.n = depth + 1
        try:
            yield
        finally:
            _lock_depth.n = depth
        return
    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (config.STATE_DIR / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _lock_depth.n = 1
        try:
            yield
        finally:
            _lock_depth.n = 0


def _pid_path(name: str) -> Path:
    return config.PID_DIR / f"{name}.pid"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); fields after the parenthesised command name are space separated.
    return stat.rsplit(")", 1)[1].split()[19]


def running_pid(name: str) -> int | None:
    """The pid of our running process ``name``, or None (a stale pid file is removed)."""
    path = _pid_path(name)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = data.get("pid")
    if pid and _start_time(pid) == data.get("start_time"):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state != "Z":
            return pid
    path.unlink(missing_ok=True)
    return None


def recorded_argv(name: str) -> list[str] | None:
    """The command line our process ``name`` was started with (None if unknown)."""
    try:
        return json.loads(_pid_path(name).read_text()).get("argv")
    except (OSError, ValueError):
        return None


def tracked_names() -> list[str]:
    if not config.PID_DIR.exists():
        return []
    return sorted(p.stem for p in config.PID_DIR.glob("*.pid"))


def _port_owner_pid(port: int) -> int | None:
    """The pid of the process listening on ``port`` (None if free or not found)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((config.HOST, port)) != 0:
            return None
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return -1


def port_owner(port: int) -> str | None:
    """Describe the process listening on 127.0.0.1/0.0.0.0:``port`` (None if the port is free)."""
    pid = _port_owner_pid(port)
    if pid is None:
        return None
    if pid < 0:
        return "an unknown process"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "an unknown process"
    return f"pid {pid}: {cmd[:120]}"


def adopt(svc: Service) -> int | None:
    """If our exact command line listens on ``svc.port`` without a pid file (two parallel
    starts raced and the loser's cleanup removed the winner's file), record it again."""
    if not svc.port or running_pid(svc.name) is not None:
        return None
    pid = _port_owner_pid(svc.port)
    if not pid or pid < 0:
        return None
    try:
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
    except OSError:
        return None
    if argv != svc.argv or os.getpgid(pid) != pid:
        return None
    data = {
        "pid": pid,
        "start_time": _start_time(pid),
        "signal": int(svc.stop_signal),
        "argv": argv,
    }
    config.PID_DIR.mkdir(parents=True, exist_ok=True)
    _pid_path(svc.name).write_text(json.dumps(data) + "\n")
    return pid


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


def ensure(svc: Service, log=print) -> str:
    """Start ``svc`` unless it already runs; return "running" or "started"."""
    pid = running_pid(svc.name) or adopt(svc)
    if pid is not None:
        if svc.ready():
            return "running"
        if wait_ready(svc, pid, timeout=min(svc.start_timeout, 30), raise_error=False):
            return "running"
        log(f"  {svc.name} (pid {pid}) does not answer: restarting it")
        stop(svc.name, sig=svc.stop_signal)
    owner = port_owner(svc.port)
    if owner is not None:
        raise ServiceError(
            f"port {config.HOST}:{svc.port} needed by {svc.name} is already taken by {owner}, "
            "which devenv did not start; stop it or change devenv/config.py PORTS"
        )
    pid = spawn(svc)
    wait_ready(svc, pid, timeout=svc.start_timeout)
    return "started"


def spawn(svc: Service) -> int:
    config.LOG_DIR.mkdir(parents=True, exist_ok=True)
    config.PID_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(svc.env)
    with svc.log_path.open("ab") as out:
        out.write(f"\n--- {time.ctime()}: {' '.join(svc.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            svc.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=svc.cwd,
            env=env,
            start_new_session=True,
        )
    data = {
        "pid": proc.pid,
        "start_time": _start_time(proc.pid),
        "signal": int(svc.stop_signal),
        "argv": svc.argv,
    }
    _pid_path(svc.name).write_text(json.dumps(data) + "\n")
    return proc.pid


def wait_ready(svc: Service, pid: int, timeout: float, raise_error: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.ready():
            return True
        if _start_time(pid) is None or _is_zombie(pid):
            _reap(pid)
            _forget(svc.name, pid)
            if not raise_error:
                return False
            raise ServiceError(
                f"{svc.name} exited while starting; last lines of {svc.log_path}:\n"
                + log_tail(svc.log_path)
            )
        time.sleep(0.25)
    if raise_error:
        raise ServiceError(
            f"{svc.name} did not become ready within {timeout:.0f}s; last lines of "
            f"{svc.log_path}:\n" + log_tail(svc.log_path)
        )
    return False


def _forget(name: str, pid: int) -> None:
    """Remove the pid file of ``name`` if it is still that of ``pid`` (a parallel start may
    have recorded another process under the same name)."""
    path = _pid_path(name)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` lives (zombies, awaiting their parent, do not)."""
    _reap(pgid)
    return bool(_group_members(pgid))


def group_pids(pgid: int) -> list[int]:
    """The live processes of group ``pgid`` (a service and the children it started)."""
    return _group_members(pgid)


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[2]) == pgid and stat[0] != "Z":
            members.append(int(proc.name))
    return members


def stop(name: str, sig: int | None = None, timeout: float = 20.0) -> bool:
    """Stop our process ``name`` and its process group; return True if something was stopped."""
    path = _pid_path(name)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    pid = running_pid(name)
    if pid is None:
        return False
    sig = sig if sig is not None else data.get("signal", signal.SIGTERM)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    path.unlink(missing_ok=True)
    return True


def tracked_groups() -> dict[str, int]:
    """Process-group ids of our running services, by name."""
    groups = {}
    for name in tracked_names():
        pid = running_pid(name)
        if pid is not None:
            groups[name] = pid
    return groups


def processes_in_groups(pgids: set[int]) -> list[str]:
    """Live processes whose process group is one of ``pgids`` (to prove `down` left none)."""
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if int(stat[2]) in pgids and stat[0] != "Z":
            alive.append(f"pid {proc.name} (group {stat[2]}): {cmd[:100]}")
    return alive


# --- readiness checks ----------------------------------------------------------------------


def http_ok(url: str, context: ssl.SSLContext | None = None, accept=(200,)) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
            return resp.status in accept
    except urllib.error.HTTPError as err:
        return err.code in accept
    except (OSError, ValueError):
        return False


def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((config.HOST, port)) == 0
