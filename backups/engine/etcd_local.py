"""Which clusters the console can restore etcd for itself, and what a restore reports.

A cluster is local when its etcd endpoint is ``CLUSTER_A_ETCD_ENDPOINT`` or
``CLUSTER_B_ETCD_ENDPOINT`` of ``.devenv/env`` (devenv's control planes run as local
processes); ``local_target`` then says where its data directory and ``etcdutl`` are.
The procedure itself is in ``etcd_restore.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .etcd_client import EtcdError, parse_endpoints


@dataclass(frozen=True)
class LocalTarget:
    """Where and how a devenv cluster's etcd runs (what ``etcdutl restore`` needs)."""

    cluster: str  # devenv's name: "a" or "b"
    endpoint: str
    data_dir: Path
    member_name: str
    initial_cluster: str
    peer_url: str
    etcdutl: str


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


class StepFailed(Exception):
    """A step failed; ``str()`` is the sentence to show."""


def _same_endpoint(a: str, b: str) -> bool:
    try:
        return parse_endpoints(a)[0].url == parse_endpoints(b)[0].url
    except EtcdError:
        return False


def local_target(cluster) -> LocalTarget | None:
    """The devenv cluster whose etcd is ``cluster``'s endpoint, or None."""
    if cluster is None or not cluster.etcd_endpoint:
        return None
    try:
        from devenv import clusters as devenv_clusters
        from devenv import load_env
    except ImportError:  # pragma: no cover - devenv ships with the console
        return None
    env = load_env()
    for name in devenv_clusters.CLUSTERS:
        prefix = f"CLUSTER_{name.upper()}_"
        endpoint = env.get(prefix + "ETCD_ENDPOINT", "")
        if not endpoint or not _same_endpoint(endpoint, cluster.etcd_endpoint):
            continue
        etcdutl = env.get("ETCDUTL", "")
        data_dir = env.get(prefix + "ETCD_DATA_DIR", "")
        if not (etcdutl and os.access(etcdutl, os.X_OK) and data_dir):
            return None
        return LocalTarget(
            cluster=name,
            endpoint=endpoint,
            data_dir=Path(data_dir),
            member_name=env.get(prefix + "ETCD_NAME", "default"),
            initial_cluster=env.get(prefix + "ETCD_INITIAL_CLUSTER", ""),
            peer_url=env.get(prefix + "ETCD_PEER_URL", ""),
            etcdutl=etcdutl,
        )
    return None


def can_restore_locally(cluster) -> bool:
    """True when the console can restore this cluster's etcd itself (local devenv)."""
    return local_target(cluster) is not None
