"""The control planes the console can restore etcd for itself, and what a restore reports.

The caller (the server's settings, never a user) lists them in a JSON file:
``{"targets": [{"name", "endpoint", "data_dir", "member_name", "initial_cluster",
"peer_url", "etcdutl", "control": [argv...]}]}``; ``load_local_targets(path)`` reads
it and ``find_local_target(targets, endpoint)`` picks the one whose etcd is the
endpoint. ``Control`` stops and starts a target's components with its ``control``
command. The procedure itself is in ``restore.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from backups.engine.etcd.client import EtcdError, parse_endpoints
from backups.engine.inputs import LocalTarget

# In starting order; stopped in the reverse order.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
CONTROL_TIMEOUT = 180  # seconds for one start (it waits until the component answers)


@dataclass
class StepResult:
    key: str
    title: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class RestoreResult:
    ok: bool
    cancelled: bool = False
    error: str = ""
    steps: list[StepResult] = field(default_factory=list)
    duration_seconds: float = 0.0
    # From stopping the API server until it answered /readyz again.
    downtime_seconds: float = 0.0
    revision: int | None = None  # the snapshot's revision (etcdutl snapshot status)
    revision_after: int | None = None  # etcd's revision after the restore (bumped)
    data_dir: str = ""
    previous_data_dir: str = ""  # the data from before the restore, kept
    rolled_back: bool = False  # the old data was put back after a failure
    cluster_running: bool = False  # the API server answered /readyz at the end

    @property
    def phase(self) -> str:
        return "Completed" if self.ok else "Cancelled" if self.cancelled else "Failed"


class StepFailed(Exception):
    """A step failed; ``str()`` is the sentence to show."""


class LocalTargetsError(ValueError):
    """The file of local targets cannot be used; ``str()`` says why."""


def load_local_targets(path: str | os.PathLike | None) -> list[LocalTarget]:
    """The targets listed in ``path`` (none when the path is empty or the file missing)."""
    if not path or not Path(path).is_file():
        return []
    try:
        doc = json.loads(Path(path).read_text())
        targets = [
            LocalTarget(
                name=str(t["name"]),
                endpoint=str(t["endpoint"]),
                data_dir=Path(t["data_dir"]),
                member_name=str(t.get("member_name") or "default"),
                initial_cluster=str(t["initial_cluster"]),
                peer_url=str(t["peer_url"]),
                etcdutl=str(t["etcdutl"]),
                control=tuple(str(arg) for arg in t["control"]),
            )
            for t in doc["targets"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LocalTargetsError(f"The local etcd targets in {path} cannot be read: {exc}") from None
    return [t for t in targets if os.access(t.etcdutl, os.X_OK)]


def _same_endpoint(a: str, b: str) -> bool:
    try:
        return parse_endpoints(a)[0].url == parse_endpoints(b)[0].url
    except EtcdError:
        return False


def find_local_target(targets: list[LocalTarget], endpoint: str) -> LocalTarget | None:
    """The target whose etcd is ``endpoint``, or None."""
    if not endpoint:
        return None
    return next((t for t in targets if _same_endpoint(t.endpoint, endpoint)), None)


class Control:
    """Stops and starts one target's components with its control command."""

    def __init__(self, target: LocalTarget, log=lambda line: None):
        self.target = target
        self.log = log

    def _run(self, action: str, component: str) -> subprocess.CompletedProcess:
        argv = [*self.target.control, action, self.target.name, component]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=CONTROL_TIMEOUT, check=False
        )

    def start(self, component: str) -> str:
        """Start ``component`` and wait until it answers (raises RuntimeError)."""
        proc = self._run("start", component)
        for line in proc.stdout.splitlines():
            self.log(line)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"{component} did not start")
        return proc.stdout.strip()

    def stop(self, component: str) -> bool:
        """Stop ``component``; True if it was running."""
        proc = self._run("stop", component)
        return proc.returncode == 0 and proc.stdout.strip().startswith("stopped")

    def ready(self, component: str) -> bool:
        return self._run("ready", component).returncode == 0
