"""Velero and the console side by side: the same objects, the same bucket, the same clusters.

    .venv/bin/python -m benchmarks.velero [--objects 20000] [--namespaces 100]

1. Makes sure cluster A holds at least N bulk objects in ``bulk-*`` namespaces (the
   backup benchmark's seeding, idempotent).
2. One fresh MinIO bucket; Velero servers (devenv/velero.py) on A and on B whose location
   is its ``velero/`` prefix; the console's location is its ``console/`` prefix.
3. Backup of the bulk namespaces of A: ``velero backup create`` (timed from the request to
   phase Completed), then the console's engine in a fresh process.
4. Restore of each backup into B under a namespace mapping to fresh namespaces: the
   console's engine in a fresh process, then ``velero restore create --namespace-mappings``
   on B's server (once it has synced the backup); the restored namespaces are deleted after
   each.
5. Prints a table: items, seconds, items/s, peak RSS of each side, and the ratio
   (Velero's time over the console's). Each side counts the items it wrote or restored
   itself (Velero also restores what the console leaves to B's controllers, e.g. Endpoints).

Peak RSS: Velero's from ``/proc/<pid>/status`` (VmHWM) of the ``velero server`` process
and of its plugin processes, sampled while it works; the console's from
``getrusage`` of the process that ran the engine. Only reports; never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.backup import ensure_objects, kubeconfig_text, load_env, rss_mib, setup_django

REPO = Path(__file__).resolve().parents[1]
POLL = 0.5


def bulk_namespaces(env: dict) -> list[str]:
    from backups.engine.kube.api import Kube

    kube = Kube(kubeconfig_text(env))
    try:
        doc = kube.get_json("/api/v1/namespaces", {"labelSelector": "palette.io/bulk=true"})
    finally:
        kube.close()
    return sorted(
        n["metadata"]["name"] for n in doc["items"] if n["metadata"]["name"][:5] == "bulk-"
    )


def location(env: dict, bucket: str):
    from locations.models import BackupLocation

    return BackupLocation(
        name="bench-console", provider="minio", bucket=bucket, prefix="console",
        endpoint_url=env["MINIO_ENDPOINT"], force_path_style=True,
        credentials={"access_key": env["MINIO_ACCESS_KEY"], "secret_key": env["MINIO_SECRET_KEY"]},
    )  # fmt: skip


def rows(env: dict, bucket: str):
    from workspaces.models import Cluster, Workspace

    ws = Workspace(name="bench", slug="bench")
    a = Cluster(workspace=ws, name="cluster-a", kubeconfig=kubeconfig_text(env))
    b = Cluster(workspace=ws, name="cluster-b", kubeconfig=_kubeconfig_b(env))
    return ws, a, b, location(env, bucket)


def _kubeconfig_b(env: dict) -> str:
    from workspaces.kube import flatten_kubeconfig

    path = Path(env["CLUSTER_B_KUBECONFIG"])
    return flatten_kubeconfig(path.read_text(), path.parent)


# --- the console, each measurement in its own process --------------------------------------


def child_backup(bucket: str, name: str, namespaces: list[str]) -> dict:
    from backups.engine.backup.run import run_backup
    from backups.engine_inputs import backup_request
    from backups.models import Backup
    from locations.providers import get_provider

    env = load_env()
    ws, a, _b, loc = rows(env, bucket)
    backup = Backup(
        name=name, workspace=ws, cluster=a, cluster_name=a.name, location=loc,
        include_namespaces=namespaces, ttl=timedelta(hours=1),
    )  # fmt: skip
    provider = get_provider(loc)
    started = time.perf_counter()
    outcome = run_backup(
        backup_request(backup, provider), progress=lambda *a: None, log=lambda line: None
    )
    seconds = time.perf_counter() - started
    provider.close()
    if outcome.phase != "Completed":
        return {"error": f"{outcome.phase}: {outcome.error}"}
    return {"items": outcome.items, "seconds": seconds, "rss_mib": rss_mib(),
            "sha256": outcome.sha256, "size": outcome.size_bytes}  # fmt: skip


def child_restore(bucket: str, name: str, sha256: str, mapping: dict) -> dict:
    from backups.models import Backup
    from benchmarks.restore import restore_row, run_engine
    from locations.providers import get_provider

    env = load_env()
    ws, a, b, loc = rows(env, bucket)
    backup = Backup(name=name, workspace=ws, cluster=a, cluster_name=a.name, location=loc,
                    sha256=sha256)  # fmt: skip
    provider = get_provider(loc)
    row = restore_row(ws, backup, b, mapping, f"restore-{name}")
    row.include_namespaces = sorted(mapping)
    result = run_engine(row, provider)
    provider.close()
    return {"items": result["objects"], "seconds": result["seconds"], "rss_mib": rss_mib(),
            "outcomes": result["outcomes"]}  # fmt: skip


def run_child(kind: str, payload: dict) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.velero", "--child", kind, json.dumps(payload)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (done.stderr or done.stdout).strip()[-2000:]}


# --- Velero ---------------------------------------------------------------------------------


class Sampler:
    """The highest VmHWM seen per process role of a Velero server."""

    def __init__(self, server):
        self.server = server
        self.peak: dict[str, float] = {}

    def sample(self) -> None:
        for role, mib in self.server.peak_rss_mib().items():
            self.peak[role] = max(self.peak.get(role, 0.0), mib)


def velero_run(server, kind: str, name: str, args: list[str], timeout: float) -> dict:
    """Create a backup or restore and wait for its final phase, sampling memory."""
    sampler = Sampler(server)
    started = time.perf_counter()
    server.cli(kind, "create", name, *args)
    final = {"Completed", "PartiallyFailed", "Failed", "FailedValidation"}
    obj: dict = {}
    while time.perf_counter() - started < timeout:
        sampler.sample()
        obj = server.get(kind, name) or {}
        if (obj.get("status") or {}).get("phase") in final:
            break
        time.sleep(POLL)
    seconds = time.perf_counter() - started
    sampler.sample()
    status = obj.get("status") or {}
    progress = status.get("progress") or {}
    items = progress.get("itemsBackedUp" if kind == "backup" else "itemsRestored", 0)
    result = {"items": items, "seconds": seconds, "rss": sampler.peak,
              "phase": status.get("phase", "timed out"),
              "warnings": status.get("warnings", 0), "errors": status.get("errors", 0)}  # fmt: skip
    result["rss_mib"] = sampler.peak.get("velero server", 0.0)
    return result


def mapping_flag(mapping: dict) -> str:
    return ",".join(f"{src}:{dst}" for src, dst in sorted(mapping.items()))


# --- report ---------------------------------------------------------------------------------


def table(results: dict, when: str, machine: str) -> str:
    def rate(r):
        return r["items"] / r["seconds"] if r.get("seconds") else 0

    lines = [
        f"Velero {os.environ.get('VELERO_VERSION', '')} vs the console, {when}, {machine}",
        "",
        "| step | side | items | seconds | items/s | peak RSS (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for step in ("backup", "restore"):
        for side in ("velero", "console"):
            r = results.get(f"{side}-{step}")
            if not r or "error" in r:
                lines.append(f"| {step} | {side} | failed: {(r or {}).get('error', 'not run')} |")
                continue
            rss = f"{r['rss_mib']:.0f}"
            if side == "velero":
                plugins = {k: v for k, v in r["rss"].items() if k != "velero server"}
                rss += " (plugins " + ", ".join(f"{v:.0f}" for v in plugins.values()) + ")"
            lines.append(
                f"| {step} | {side} | {r['items']} | {r['seconds']:.1f} | {rate(r):.0f} | {rss} |"
            )
        v, c = results.get(f"velero-{step}"), results.get(f"console-{step}")
        if v and c and "error" not in v and "error" not in c and c["seconds"]:
            lines.append(
                f"| {step} | Velero / console | | {v['seconds'] / c['seconds']:.1f}x | "
                f"{rate(c) / rate(v) if rate(v) else 0:.1f}x | "
                f"{v['rss_mib'] / c['rss_mib'] if c['rss_mib'] else 0:.1f}x |"
            )
    return "\n".join(lines)


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{platform.machine()} {os.cpu_count()} CPUs, load average {load:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600, help="per Velero operation")
    parser.add_argument("--child", choices=["backup", "restore"], help=argparse.SUPPRESS)
    parser.add_argument("payload", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_django()
    if args.child:
        payload = json.loads(args.payload)
        child = child_backup if args.child == "backup" else child_restore
        print(json.dumps(child(**payload)))
        return 0
    return compare(args)


def compare(args) -> int:
    from backups.engine.kube.api import Kube
    from benchmarks.restore import delete_namespaces, mapping_for
    from devenv import config, velero
    from devenv.testing import boto3_s3, empty_and_delete_bucket

    env = load_env()
    if not env.get("CLUSTER_B_KUBECONFIG") or not velero.binaries_available():
        sys.exit("clusters A and B and Velero are needed: run `make devenv` first")
    os.environ["VELERO_VERSION"] = config.VELERO_VERSION
    ensure_objects(env, args.objects, args.namespaces)
    namespaces = bulk_namespaces(env)
    stamp = f"{int(time.time()) % 100000:05d}"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{len(namespaces)} bulk namespaces; {machine()}")
    s3 = boto3_s3(env["MINIO_ENDPOINT"], env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"])
    bucket = f"bench-velero-{stamp}"
    s3.create_bucket(Bucket=bucket)
    servers, results = [], {}
    kube_b = Kube(_kubeconfig_b(env), pool_size=20)
    try:
        on_a = velero.start("a", bucket, "velero", devenv_env=env)
        servers.append(on_a)
        name = f"bench-{stamp}"
        results["velero-backup"] = velero_run(
            on_a, "backup", name,
            ["--include-namespaces", ",".join(namespaces), "--snapshot-volumes=false"],
            args.timeout,
        )  # fmt: skip
        print("velero backup:", results["velero-backup"])
        results["console-backup"] = run_child(
            "backup", {"bucket": bucket, "name": name, "namespaces": namespaces}
        )
        print("console backup:", {k: v for k, v in results["console-backup"].items()
                                   if k != "sha256"})  # fmt: skip

        # The console's restore first: it is the shorter, and a Velero restore that runs
        # past --timeout then still leaves both backups and one restore measured.
        backup = results["console-backup"]
        if "error" not in backup:
            mapping = mapping_for(namespaces, f"cr{stamp}")
            results["console-restore"] = run_child(
                "restore",
                {"bucket": bucket, "name": name, "sha256": backup["sha256"], "mapping": mapping},
            )
            print("console restore:", results["console-restore"])
            print(f"  (clean-up {delete_namespaces(kube_b, f'cr{stamp}'):.0f} s)")
        on_b = velero.start("b", bucket, "velero", devenv_env=env)
        servers.append(on_b)
        deadline = time.monotonic() + 300
        while on_b.get("backup", name) is None and time.monotonic() < deadline:
            time.sleep(1)
        mapping = mapping_for(namespaces, f"vr{stamp}")
        results["velero-restore"] = velero_run(
            on_b, "restore", f"restore-{name}",
            ["--from-backup", name, "--namespace-mappings", mapping_flag(mapping)],
            args.timeout,
        )  # fmt: skip
        print("velero restore:", results["velero-restore"])
        print(f"  (clean-up {delete_namespaces(kube_b, f'vr{stamp}'):.0f} s)")
    finally:
        for server in servers:
            server.stop()
        kube_b.close()
        empty_and_delete_bucket(s3, bucket)
    print()
    print(table(results, when, machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
