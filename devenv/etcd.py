"""etcd snapshots of the local clusters: save with etcdctl, restore with etcdutl.

The restore follows the runbook that the console prints for a production etcd: stop the
apiserver and etcd, ``etcdutl snapshot restore`` into a new data directory with
``--bump-revision`` and ``--mark-compacted``, start etcd on it, restart the apiserver.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from . import clusters, procs


def etcdctl_args(cluster: str) -> list[str]:
    """etcdctl's connection flags for a cluster (endpoint and, for A, the client certs)."""
    c = clusters.CLUSTERS[cluster]
    args = [clusters.binary("etcdctl"), f"--endpoints={c.etcd_endpoint}"]
    if c.etcd_tls:
        files = clusters.etcd_client_files(c)
        args += [f"--cacert={files['ca']}", f"--cert={files['cert']}", f"--key={files['key']}"]
    return args


def save_snapshot(cluster: str, path: str | Path) -> Path:
    """Save a snapshot of a running cluster's etcd with ``etcdctl snapshot save``."""
    path = Path(path)
    subprocess.run(
        [*etcdctl_args(cluster), "snapshot", "save", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def restore_snapshot(cluster: str, snapshot: str | Path, log=print) -> Path:
    """Restore a local cluster's etcd from a snapshot file, the documented way.

    Stops the controller manager, the apiserver and etcd; runs ``etcdutl snapshot restore``
    into a new data directory with ``--bump-revision=1000000 --mark-compacted`` (so watchers
    never see revisions go backwards); swaps it in place of the old data directory (kept as
    ``etcd.before-restore``); starts etcd, the apiserver and the controller manager again.
    Returns the data directory.
    """
    snapshot = Path(snapshot).resolve()
    if not snapshot.is_file():
        raise FileNotFoundError(snapshot)
    with procs.devenv_lock():
        return _restore_snapshot(cluster, snapshot, log)


def _restore_snapshot(cluster: str, snapshot: Path, log) -> Path:
    c = clusters.CLUSTERS[cluster]
    for component in reversed(clusters.COMPONENTS):
        clusters.stop_component(cluster, component)
    staging = c.dir / "etcd.restoring"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        clusters.binary("etcdutl"),
        "snapshot",
        "restore",
        str(snapshot),
        f"--data-dir={staging}",
        "--name=default",
        f"--initial-cluster={c.initial_cluster}",
        f"--initial-advertise-peer-urls={c.etcd_peer_url}",
        "--bump-revision=1000000",
        "--mark-compacted",
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        # Leave the cluster as it was before.
        for component in clusters.COMPONENTS:
            clusters.start_component(cluster, component, log=log)
        raise RuntimeError(f"etcdutl snapshot restore failed: {proc.stderr.strip()}")
    old = c.dir / "etcd.before-restore"
    shutil.rmtree(old, ignore_errors=True)
    if c.etcd_data_dir.exists():
        c.etcd_data_dir.rename(old)
    staging.rename(c.etcd_data_dir)
    for component in clusters.COMPONENTS:
        clusters.start_component(cluster, component, log=log)
    log(f"cluster {cluster}: etcd restored from {snapshot} in {time.monotonic() - started:.1f}s")
    return c.etcd_data_dir
