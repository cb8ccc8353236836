"""Backup benchmark: the engine against the floor, on cluster A of `make devenv`.

    .venv/bin/python -m benchmarks.backup [--objects 20000 | --sizes 20000,100000,300000]
                                          [--rounds 3] [--store minio] [--encrypt]
                                          [--prefix hscale] [--cleanup]

1. For each size N (ascending), makes sure cluster A holds the first N objects of the
   large-cluster mix (``devenv.scale_objects``: config maps, secrets, services, service
   accounts, Deployments with no replicas and their ReplicaSets, roles, bindings, custom
   resources) in namespaces ``<prefix>-0000`` ..., 250 each (``benchmarks/scale.py``:
   concurrent creates; namespaces seeded before are reused, namespaces past N deleted).
2. Alternates, ``--rounds`` times, in fresh subprocesses:
   * the floor: the same resource types, listed with the same client, the same
     concurrency and ``limit=500`` pages; each page's list metadata is decoded
     (with the engine's decoder) to follow the continue token, and its bytes
     are gzipped at the engine's level into nowhere;
   * the backup: ``run_backup`` of the whole cluster into a fresh local
     directory (and, with ``--store minio``, into a fresh MinIO bucket).
3. Prints, per run and as medians: objects, seconds, objects/s, peak RSS of the
   process, archive size, and the ratio of the backup to the floor; with several
   sizes, a table of them at the end. ``--cleanup`` deletes the seeded namespaces.

With ``--encrypt`` each round also runs the backup through the sealing provider
(client-side encryption, backups/engine/storage/sealed.py) and prints its time
against the plain backup of the same rounds.

Targets: within 1.3x of the floor, peak RSS under 256 MiB at every size; a sealed
backup within 1.15x of the plain one. The script only reports; it never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "palette_site.settings")
    # devenv runs on loopback, and the benchmark's directory is a temporary one.
    os.environ.setdefault("PALETTE_EGRESS_ALLOW", "127.0.0.0/8,::1,localhost")
    os.environ.setdefault("PALETTE_FILESYSTEM_ROOTS", tempfile.gettempdir())
    import django

    django.setup()


def load_env() -> dict:
    from devenv import load_env as devenv_env

    env = devenv_env()
    if not env.get("CLUSTER_A_KUBECONFIG"):
        sys.exit("cluster A is not up: run `make devenv` first")
    return env


def kubeconfig_text(env: dict) -> str:
    from workspaces.kube import flatten_kubeconfig

    path = Path(env["CLUSTER_A_KUBECONFIG"])
    return flatten_kubeconfig(path.read_text(), path.parent)


def rss_mib() -> float:
    from benchmarks.scale import peak_rss_mib

    return peak_rss_mib()


# --- seeding ------------------------------------------------------------------------------


def _etcd(env: dict, how: str):
    from benchmarks.scale_etcd import Etcd

    return Etcd(env) if how == "etcd" else None


def ensure_objects(env: dict, wanted: int, prefix: str, seed: str = "api") -> None:
    """Cluster A holds exactly the first ``wanted`` objects of the mix under ``prefix``;
    ``seed="etcd"`` writes most of them into its etcd (``benchmarks/scale_etcd.py``)."""
    from backups.engine.kube.api import Kube
    from benchmarks import scale

    scale.ensure_definition(env["CLUSTER_A_KUBECONFIG"])
    kube = Kube(kubeconfig_text(env), pool_size=scale.SEED_WORKERS + 4)
    etcd = _etcd(env, seed)
    try:
        scale.trim(kube, wanted, prefix, etcd=etcd)
        scale.seed(kube, wanted, prefix, etcd=etcd)
    finally:
        kube.close()
        if etcd is not None:
            etcd.close()


def clear_objects(env: dict, prefix: str, seed: str = "api") -> None:
    from backups.engine.kube.api import Kube
    from benchmarks import scale

    kube = Kube(kubeconfig_text(env), pool_size=20)
    etcd = _etcd(env, seed)
    try:
        scale.clear(kube, prefix, etcd=etcd)
    finally:
        kube.close()
        if etcd is not None:
            etcd.close()


# --- the two measurements (each in its own process) ---------------------------------------


def make_backup(env: dict, store: str, workdir: str):
    """An unsaved Backup of the whole cluster and the provider to write it to."""
    from backups.models import Backup
    from locations.models import BackupLocation
    from locations.providers import get_provider
    from workspaces.models import Cluster, Workspace

    ws = Workspace(name="bench", slug="bench")
    cluster = Cluster(workspace=ws, name="cluster-a", kubeconfig=kubeconfig_text(env))
    if store == "minio":
        from devenv.testing import boto3_s3

        bucket = f"bench-{int(time.time() * 1000)}"
        boto3_s3(
            env["MINIO_ENDPOINT"], env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"]
        ).create_bucket(Bucket=bucket)
        location = BackupLocation(
            name="bench-minio",
            provider="minio",
            bucket=bucket,
            endpoint_url=env["MINIO_ENDPOINT"],
            force_path_style=True,
            credentials={
                "access_key": env["MINIO_ACCESS_KEY"],
                "secret_key": env["MINIO_SECRET_KEY"],
            },
        )
    else:
        location = BackupLocation(name="bench-disk", provider="filesystem", path=workdir)
    backup = Backup(
        name=f"bench-{int(time.time() * 1000)}",
        workspace=ws,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        ttl=timedelta(hours=1),
    )
    return backup, get_provider(location), location


def child_backup(store: str, encrypt: bool = False) -> dict:
    from backups.engine.backup.run import run_backup
    from backups.engine_inputs import backup_request

    env = load_env()
    with tempfile.TemporaryDirectory(prefix="palette-bench-") as workdir:
        backup, provider, location = make_backup(env, store, workdir)
        if encrypt:  # the sealing a location with encryption does, with a key in memory
            from backups.engine.storage.sealed import SealedProvider

            key = os.urandom(32)
            provider = SealedProvider(provider, lambda: ("bench", key), {"bench": key}.__getitem__)
        base_rss = rss_mib()
        started = time.perf_counter()
        request = backup_request(backup, provider)
        outcome = run_backup(request, progress=lambda *a: None, log=lambda line: None)
        seconds = time.perf_counter() - started
        if store == "minio":
            from devenv.testing import boto3_s3, empty_and_delete_bucket

            s3 = boto3_s3(env["MINIO_ENDPOINT"], env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"])
            empty_and_delete_bucket(s3, location.bucket)
        provider.close()
    if outcome.phase != "Completed":
        return {"error": f"{outcome.phase}: {outcome.error}"}
    return {
        "objects": outcome.items,
        "seconds": seconds,
        "rss_mib": rss_mib(),
        "rss_before_mib": base_rss,
        "size": outcome.size_bytes,
    }


def child_floor() -> dict:
    """A plain paged LIST of the types the backup lists, gzip to nowhere."""
    from backups.engine.backup.collect import PAGE_SIZE, WORKERS
    from backups.engine.filters import NamespaceFilter, Scope
    from backups.engine.kube.api import Kube
    from backups.engine.kube.discovery import discover
    from backups.engine.kube.pages import page_token
    from backups.engine.velero.archive import new_gzip

    env = load_env()
    kube = Kube(kubeconfig_text(env), pool_size=WORKERS)
    base_rss = rss_mib()
    started = time.perf_counter()
    types = discover(kube).types
    scope = Scope(NamespaceFilter(), "auto")
    paths = [t.list_path() for t in types if scope.wants_type(t) or t.resource == "namespaces"]
    # One gzip stream fed by the listing threads in turn, as the engine's writer is.
    gzip = new_gzip()
    lock = threading.Lock()
    compressed = [0]

    pages = [0]

    def list_all(path: str) -> None:
        token = ""
        while True:
            query = {"limit": PAGE_SIZE, **({"continue": token} if token else {})}
            data = kube.get(path, query)
            pages[0] += 1
            with lock:
                compressed[0] += len(gzip.compress(data))
            token = page_token(data)
            if not token:
                return

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(list_all, paths))
    compressed[0] += len(gzip.flush())
    seconds = time.perf_counter() - started
    kube.close()
    return {
        "pages": pages[0],  # the floor reads pages; it does not look at objects
        "seconds": seconds,
        "rss_mib": rss_mib(),
        "rss_before_mib": base_rss,
        "size": compressed[0],
    }


def run_child(kind: str, store: str = "filesystem", encrypt: bool = False) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.backup", "--child", kind, "--store", store]
    cmd += ["--encrypt"] if encrypt else []
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (done.stderr or done.stdout).strip()[-2000:]}


# --- report -------------------------------------------------------------------------------


def describe(name: str, result: dict, objects: int | None = None) -> str:
    """One line; the floor's rate uses the backup's object count (the same objects)."""
    if "error" in result:
        return f"  {name:<20} FAILED: {result['error']}"
    objects = result.get("objects", objects) or 0
    rate = objects / result["seconds"] if result["seconds"] else 0
    return (
        f"  {name:<20} {objects:>7} objects  {result['seconds']:7.2f} s  "
        f"{rate:8.0f} objects/s  peak RSS {result['rss_mib']:6.1f} MiB  "
        f"size {result['size'] / 1e6:6.2f} MB"
    )


def measure(args, stores: list[str]) -> dict[str, dict]:
    """The rounds at the cluster's present size; the medians by run name."""
    # The backup first in each round, so that the floor's line can show its object count.
    runs: dict[str, list[dict]] = {**{f"backup/{s}": [] for s in stores}, "floor": []}
    if args.encrypt:
        runs |= {f"sealed/{s}": [] for s in stores}
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}")
        for name in runs:
            kind, _, store = name.partition("/")
            result = (
                run_child("floor")
                if name == "floor"
                else run_child("backup", store, encrypt=kind == "sealed")
            )
            runs[name].append(result)
            objects = (
                runs["backup/filesystem"][-1].get("objects") if runs["backup/filesystem"] else None
            )
            print(describe(name, result, objects), flush=True)

    print("medians")
    medians = {}
    for name, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            print(f"  {name:<20} no successful run")
            continue
        medians[name] = {
            key: statistics.median(r[key] for r in good)
            for key in ("objects", "pages", "seconds", "rss_mib", "size")
            if key in good[0]
        }
    objects = medians.get("backup/filesystem", {}).get("objects")
    for name, median in medians.items():
        print(describe(name, median, objects))
    floor = medians.get("floor")
    for name, median in medians.items():
        if name != "floor" and floor:
            ratio = median["seconds"] / floor["seconds"]
            verdict = "within" if ratio <= 1.3 else "OVER"
            rss = "under" if median["rss_mib"] < 256 else "OVER"
            print(
                f"  {name}: {ratio:.2f}x the floor ({verdict} the 1.3x target); "
                f"peak RSS {median['rss_mib']:.0f} MiB ({rss} the 256 MiB target)"
            )
    for store in stores:
        plain, sealed = medians.get(f"backup/{store}"), medians.get(f"sealed/{store}")
        if plain and sealed:
            ratio = sealed["seconds"] / plain["seconds"]
            verdict = "within" if ratio <= 1.15 else "OVER"
            print(
                f"  encryption on {store}: sealed {sealed['seconds']:.2f} s vs plain "
                f"{plain['seconds']:.2f} s = {ratio:.2f}x the plain backup ({verdict} the 1.15x "
                f"target); peak RSS {sealed['rss_mib']:.0f} vs {plain['rss_mib']:.0f} MiB"
            )
    return medians


def main(argv=None) -> int:
    from benchmarks.scale import size_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["filesystem", "minio"], default="filesystem")
    parser.add_argument("--encrypt", action="store_true", help="Also time sealed backups")
    parser.add_argument("--child", choices=["floor", "backup"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_django()
    if args.child:
        result = child_floor() if args.child == "floor" else child_backup(args.store, args.encrypt)
        print(json.dumps(result))
        return 0

    from backups.engine.kube import pages
    from backups.engine.velero.archive import GZIP_LEVEL, gzip_implementation
    from benchmarks.scale import sizes, table

    env = load_env()
    decoder = "msgspec" if pages.msgspec is not None else "json (standard library)"
    print(
        f"page decoder: {decoder}; gzip: {gzip_implementation()} level {GZIP_LEVEL}; "
        f"{os.cpu_count()} CPUs; rounds: {args.rounds}"
    )
    stores = ["filesystem"] + (["minio"] if args.store == "minio" else [])
    rows = []
    try:
        for size in sizes(args.sizes or str(args.objects)):
            print(f"== {size} objects (load average {os.getloadavg()[0]:.1f})", flush=True)
            ensure_objects(env, size, args.prefix, args.seed)
            rows.append((size, measure(args, stores)))
    finally:  # even after a failure: hundreds of thousands of objects slow the cluster
        if args.cleanup:
            clear_objects(env, args.prefix, args.seed)
    if rows:
        table("backup", [(n, m.get("backup/filesystem"), m.get("floor")) for n, m in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
