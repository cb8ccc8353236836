"""Volume data throughput: backup and restore of one local-path volume, next to its floor.

    .venv/bin/python -m benchmarks.volumes [--mib 2048] [--small 10000] [--cluster b]
        [--keep]

Writes, in a fresh namespace of the cluster, one large file plus ``--small`` small files
(``--mib`` MiB in all, half in the large file) with the demo app; then, into a temporary
filesystem location:

* backup: ``run_backup`` with disks (the busybox mover over exec, sha256 at both ends);
* restore: ``run_restore`` into a second namespace (a new claim filled by a mover);
* the floor: the same directory read by ``tar`` on this machine (the node's local-path
  directory) into a file in the same store directory, and that file unpacked by ``tar``.

Prints MiB/s of each, the worker's CPU seconds for each (this process: frame reading,
hashing, masking, the store's writes), its peak RSS, and with ``--phases`` the job's
volume log lines with the second each came (the mover's start, the stream, the end).
Then a second backup of the unchanged volume (deduplicated by restic when it is
installed: only the index and snapshot are new) with the bytes it stored. Never fails
on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MOVER_IMAGE = "localhost/palette-devenv/busybox:1"


def read_env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines() if path.is_file() else []
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


class Cluster:
    def __init__(self, env: dict, key: str):
        self.kubectl = env["KUBECTL"]
        self.kubeconfig = env[f"CLUSTER_{key.upper()}_KUBECONFIG"]

    def run(self, *args: str, stdin: str | None = None, timeout: float = 1800) -> str:
        out = subprocess.run(
            [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"kubectl {' '.join(args[:4])}: {out.stderr.strip()}")
        return out.stdout

    def pod(self, namespace: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = json.loads(self.run("-n", namespace, "get", "pods", "-l", "app=bench",
                                        "-o", "json"))["items"]  # fmt: skip
            for pod in found:
                if pod["status"].get("phase") == "Running":
                    return pod["metadata"]["name"]
            time.sleep(1)
        raise TimeoutError(f"no Running pod in {namespace}")


def objects(namespace: str, image: str, size_mib: int) -> dict:
    capacity = f"{max(1, size_mib * 2 // 1024 + 1)}Gi"
    return {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "bench-data", "namespace": namespace},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                  "resources": {"requests": {"storage": capacity}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "bench", "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "bench"}},
                  "template": {"metadata": {"labels": {"app": "bench"}}, "spec": {
                      "containers": [{"name": "app", "image": image,
                                      "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
                      "volumes": [{"name": "d",
                                   "persistentVolumeClaim": {"claimName": "bench-data"}}]}}}},
    ]}  # fmt: skip


def host_dir(cluster: Cluster, namespace: str) -> Path:
    """The node's directory of the local-path volume (the node runs on this machine)."""
    pv = json.loads(cluster.run("-n", namespace, "get", "pvc", "bench-data", "-o", "json"))
    volume = json.loads(cluster.run("get", "pv", pv["spec"]["volumeName"], "-o", "json"))
    spec = volume["spec"]
    return Path((spec.get("local") or spec.get("hostPath") or {})["path"])


def worker_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate(mib: float, seconds: float) -> str:
    return f"{mib / seconds:7.1f} MiB/s ({seconds:6.1f} s)"


def stored_copy(store, backup: str) -> dict:
    """The copy record of the backup's one volume."""
    import gzip

    key = store.layout.backup_file(backup, "volumecopies")
    records = json.loads(gzip.decompress(store.provider.get_bytes(key)))
    return (records[0].get("copy") or {}) if records else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=2048, help="MiB in the volume")
    parser.add_argument("--small", type=int, default=10000, help="how many small files")
    parser.add_argument("--cluster", default="b", choices=["a", "b"])
    parser.add_argument("--keep", action="store_true", help="keep the namespaces and store")
    parser.add_argument("--phases", action="store_true", help="print the volume log lines")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from backups.engine.backup.run import run_backup
    from backups.engine.inputs import (
        BackupRequest,
        BackupSpec,
        ClusterConnection,
        RestoreRequest,
        RestoreSpec,
        Store,
        VolumeSettings,
    )  # fmt: skip
    from backups.engine.restore.run import run_restore
    from locations.providers.filesystem import FilesystemProvider

    env = read_env(Path(os.environ.get("PALETTE_DEVENV_DIR", REPO / ".devenv")) / "env")
    cluster = Cluster(env, args.cluster)
    tag = uuid.uuid4().hex[:6]
    source, target = f"bench-vol-{tag}", f"bench-vol-{tag}-r"
    store_dir = Path(tempfile.mkdtemp(prefix="bench-volumes-"))
    try:
        cluster.run("apply", "-f", "-", stdin=json.dumps(objects(source, env["DEMO_APP_IMAGE"],
                                                                 args.mib)))  # fmt: skip
        pod = cluster.pod(source)
        half = (args.mib << 20) // 2
        print(f"writing {args.mib} MiB: one {half >> 20} MiB file and {args.small} small files")
        for sub, files in (("big", 1), ("small", args.small)):
            cluster.run("-n", source, "exec", pod, "--", "app", "write", "--dir", f"/data/{sub}",
                        "--files", str(files), "--bytes", str(half))  # fmt: skip
        kubeconfig = Path(cluster.kubeconfig).read_text()
        connection = ClusterConnection(f"cluster-{args.cluster}", kubeconfig)
        provider = FilesystemProvider(str(store_dir), roots=[str(store_dir)])
        secret = os.urandom(16).hex()
        store = Store(provider, name="bench", prefix="velero",
                      restic_password=lambda namespace: f"{secret}-{namespace}")  # fmt: skip
        volumes = VolumeSettings(mover_image=MOVER_IMAGE)
        clock = [time.monotonic()]

        def log(line, *rest):
            if args.phases and "olume" in str(line):
                print(f"  {time.monotonic() - clock[0]:7.2f} s  {str(line)[:150]}")

        quiet = {"progress": lambda *a: None, "log": log}

        started = clock[0] = time.monotonic()
        cpu = worker_cpu()
        outcome = run_backup(BackupRequest(
            name=f"bench-{tag}", cluster=connection, store=store, volumes=volumes,
            spec=BackupSpec(include_namespaces=(source,), include_disks=True, volume_mode="copy"),
        ), **quiet)  # fmt: skip
        backup_s, backup_cpu = time.monotonic() - started, worker_cpu() - cpu
        print(f"backup: {outcome.phase} {outcome.error}")
        started = clock[0] = time.monotonic()
        cpu = worker_cpu()
        restored = run_restore(RestoreRequest(
            name=f"bench-{tag}-r", backup_name=f"bench-{tag}", cluster=connection, store=store,
            volumes=volumes, spec=RestoreSpec(include_namespaces=(source,), restore_pvs=True,
                                              namespace_mapping={source: target}),
        ), record=lambda results: None, **quiet)  # fmt: skip
        restore_s, restore_cpu = time.monotonic() - started, worker_cpu() - cpu
        print(f"restore: {restored.phase} {restored.error}")
        started = clock[0] = time.monotonic()
        cpu = worker_cpu()
        again = run_backup(BackupRequest(
            name=f"bench-{tag}-2", cluster=connection, store=store, volumes=volumes,
            spec=BackupSpec(include_namespaces=(source,), include_disks=True, volume_mode="copy"),
        ), **quiet)  # fmt: skip
        second_s, second_cpu = time.monotonic() - started, worker_cpu() - cpu
        print(f"second backup: {again.phase} {again.error}")
        copies = [stored_copy(store, name) for name in (f"bench-{tag}", f"bench-{tag}-2")]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        directory = host_dir(cluster, source)
        floor_file = store_dir / "floor.tar"
        started = time.monotonic()
        subprocess.run(["tar", "-cf", str(floor_file), "-C", str(directory), "."], check=True)
        os.sync()
        floor_backup = time.monotonic() - started
        unpack = Path(tempfile.mkdtemp(prefix="bench-unpack-", dir=store_dir))
        started = time.monotonic()
        subprocess.run(["tar", "-xf", str(floor_file), "-C", str(unpack)], check=True)
        os.sync()
        floor_restore = time.monotonic() - started

        print(f"\nvolume: {args.mib} MiB, {args.small + 1} files")
        print(f"backup  (mover, exec, store): {rate(args.mib, backup_s)}")
        print(f"floor   (tar of the node's directory to the same store): "
              f"{rate(args.mib, floor_backup)}")  # fmt: skip
        print(f"restore (store, exec, mover): {rate(args.mib, restore_s)}")
        print(f"floor   (tar -x from the same store):  {rate(args.mib, floor_restore)}")
        print(f"backup / floor: {backup_s / floor_backup:.2f}x; restore / floor: "
              f"{restore_s / floor_restore:.2f}x")  # fmt: skip
        print(f"worker CPU: backup {backup_cpu:.1f} s, restore {restore_cpu:.1f} s "
              f"({backup_cpu * 1024 / args.mib:.1f} / {restore_cpu * 1024 / args.mib:.1f} s "
              "a GiB)")  # fmt: skip
        print(f"worker peak RSS: {rss:.0f} MiB")
        for label, copy in zip(("first", "second"), copies, strict=True):
            stored = copy.get("stored", copy.get("size", 0))
            print(
                f"{label} backup's copy: format {copy.get('format')}, {copy.get('size', 0)} "
                f"bytes, {stored} stored ({100 * stored / max(1, copy.get('size', 1)):.2f}%)"
            )
        print(f"second backup of the unchanged volume: {rate(args.mib, second_s)}, "
              f"worker CPU {second_cpu:.1f} s")  # fmt: skip
    finally:
        if not args.keep:
            for ns in (source, target):
                subprocess.run([cluster.kubectl, f"--kubeconfig={cluster.kubeconfig}", "delete",
                                "namespace", ns, "--wait=false"], capture_output=True)  # fmt: skip
            shutil.rmtree(store_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
