"""Restore benchmark: the engine against the floor, from cluster A into cluster B of `make devenv`.

    .venv/bin/python -m benchmarks.restore [--objects 20000 | --sizes 20000,100000,300000]
                                           [--rounds 1] [--workers 24] [--prefix scale]
                                           [--cleanup]

1. For each size N (ascending), makes sure cluster A holds the first N objects of the
   large-cluster mix in namespaces ``<prefix>-*`` (``benchmarks/scale.py``, shared with
   the backup benchmark; seeded namespaces are reused).
2. Backs those namespaces up with the backup engine into a temporary directory
   (not measured).
3. Each round, on cluster B, in alternating order:
   * the restore: ``run_restore`` of the backup, in a fresh process (its peak RSS is
     that of one restore job), under a namespace mapping ``<prefix>-NNNN`` ->
     ``re<stamp>-NNNN`` (fresh, empty namespaces), from download and checksum to
     the last object, with ``record`` counting the results;
   * the floor: the same sanitized objects (planned by the engine beforehand, not
     measured) into other fresh namespaces ``fl<stamp>-NNNN``: the namespaces, then
     every object, each a plain POST through the same client with the same number
     of parallel requests, and nothing else;
   then deletes the namespaces it created and waits until they are gone, so that
   no run pays for the previous one's clean-up.
4. Prints objects, seconds, objects/s for both, the restore's peak RSS and the ratio;
   with several sizes, a table at the end. ``--cleanup`` deletes the seeded namespaces.

Targets: within 1.1x of the floor, peak RSS under 256 MiB at every size. The script
only reports; it never fails on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


def kubeconfig(env: dict, which: str) -> str:
    from workspaces.kube import flatten_kubeconfig

    path = Path(env[f"CLUSTER_{which}_KUBECONFIG"])
    return flatten_kubeconfig(path.read_text(), path.parent)


def rows(env: dict, store: str):
    """Unsaved rows: a workspace, clusters A and B, a filesystem location."""
    from locations.models import BackupLocation
    from workspaces.models import Cluster, Workspace

    ws = Workspace(name="bench", slug="bench")
    a = Cluster(workspace=ws, name="cluster-a", kubeconfig=kubeconfig(env, "A"))
    b = Cluster(workspace=ws, name="cluster-b", kubeconfig=kubeconfig(env, "B"))
    location = BackupLocation(name="bench-disk", provider="filesystem", path=store)
    return ws, a, b, location


def make_backup(ws, cluster, location, provider, prefix: str):
    from backups.engine.backup.run import run_backup
    from backups.engine_inputs import backup_request
    from backups.models import Backup

    backup = Backup(
        name=f"bench-restore-{int(time.time())}",
        workspace=ws,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        include_namespaces=[f"{prefix}-*"],
        ttl=timedelta(hours=1),
    )
    started = time.perf_counter()
    request = backup_request(backup, provider)
    outcome = run_backup(request, progress=lambda *a: None, log=lambda line: None)
    if outcome.phase != "Completed":
        sys.exit(f"the backup failed: {outcome.phase} {outcome.error}")
    backup.sha256 = outcome.sha256
    took = time.perf_counter() - started
    print(f"backup {backup.name}: {outcome.items} items, {outcome.size_bytes} bytes ({took:.1f} s)")
    return backup


def restore_row(ws, backup, cluster, mapping: dict, name: str, prefix: str):
    from backups.models import Restore

    return Restore(
        name=name,
        backup=backup,
        backup_name=backup.name,
        workspace=ws,
        target_cluster=cluster,
        target_cluster_name=cluster.name,
        include_namespaces=[f"{prefix}-*"],
        namespace_mapping=mapping,
    )


def mapping_for(backup_namespaces: list[str], source: str, prefix: str) -> dict:
    return {ns: ns.replace(f"{source}-", f"{prefix}-", 1) for ns in backup_namespaces}


# --- the two measurements -----------------------------------------------------------------


def run_engine(row, provider) -> dict:
    from backups.engine.restore.run import run_restore
    from backups.engine_inputs import restore_request
    from benchmarks.scale import peak_rss_mib

    counts: Counter = Counter()
    request = restore_request(row, provider)
    started = time.perf_counter()
    outcome = run_restore(
        request,
        progress=lambda *a: None,
        log=lambda line: None,
        record=lambda results: counts.update(r.outcome for r in results),
    )
    seconds = time.perf_counter() - started
    if outcome.phase != "Completed":
        print(f"  restore ended {outcome.phase}: {outcome.error} {dict(counts)}")
    return {
        "objects": outcome.total,
        "seconds": seconds,
        "outcomes": dict(counts),
        "rss_mib": peak_rss_mib(),
    }


def child_restore(spec: dict) -> dict:
    """The restore of ``spec`` (what the parent made) in this fresh process."""
    from backups.models import Backup
    from devenv import load_env
    from locations.providers import get_provider

    env = load_env()
    ws, a, b, location = rows(env, spec["store"])
    backup = Backup(name=spec["backup"], workspace=ws, cluster=a, cluster_name=a.name,
                    location=location, sha256=spec["sha256"])  # fmt: skip
    row = restore_row(ws, backup, b, spec["mapping"], spec["name"], spec["prefix"])
    provider = get_provider(location)
    try:
        return run_engine(row, provider)
    finally:
        provider.close()


def run_child(spec: dict, workers: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.restore", "--child", json.dumps(spec),
           "--workers", str(workers)]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        sys.exit(f"the restore failed: {(done.stderr or done.stdout).strip()[-2000:]}")


def plan_for_floor(row, provider, kube):
    """The engine's sanitized objects for ``row``, planned outside the measurement."""
    from backups.engine.kube.discovery import discover
    from backups.engine.restore.archive import read_contents, spool
    from backups.engine.restore.options import build_options
    from backups.engine.restore.plan import plan_restore
    from backups.engine.storage.layout import Layout
    from backups.engine_inputs import restore_request

    key = Layout(row.backup.location.prefix).backup_file(row.backup.name, "archive")
    spooled, _size, _sha = spool(provider, key, row.backup.sha256)
    with spooled:
        contents = read_contents(spooled)
    discovery = discover(kube)
    request = restore_request(row, provider)
    options, _warnings = build_options(request, discovery.types, contents.group_resources())
    return plan_restore(contents, options), discovery


def run_floor(plan, discovery, kube, workers: int) -> dict:
    """Plain concurrent POSTs of the planned objects: namespaces first, then the rest."""
    from backups.engine.restore.target import Target

    target = Target(kube, discovery)
    paths = {}
    for group in plan.groups:
        rt = discovery.find(group.group_resource)
        paths[group.group_resource] = rt
    # (path, sanitized object), made before the clock starts
    namespaces = [
        (paths[g.group_resource].list_path(None), i.body())
        for g in plan.groups if g.group_resource == "namespaces" for i in g.items
    ]  # fmt: skip
    others = [
        (paths[g.group_resource].list_path(i.namespace or None), i.body())
        for g in plan.groups if g.group_resource != "namespaces" for i in g.items
    ]  # fmt: skip
    statuses: Counter = Counter()

    def post(request) -> None:
        path, body = request
        statuses[target.request("POST", path, body).status] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(post, namespaces))
        list(pool.map(post, others))
    seconds = time.perf_counter() - started
    return {
        "objects": len(namespaces) + len(others),
        "seconds": seconds,
        "statuses": dict(statuses),
    }


def delete_namespaces(kube, prefix: str, timeout: float = 1800) -> float:
    """Delete the namespaces named ``<prefix>-*``; wait until they are gone."""
    from benchmarks.scale import delete_namespaces as delete

    doc = kube.get_json("/api/v1/namespaces")
    names = [n["metadata"]["name"] for n in doc["items"]]
    return delete(kube, [n for n in names if n.startswith(prefix + "-")], timeout)


# --- report -------------------------------------------------------------------------------


def describe(name: str, result: dict) -> str:
    rate = result["objects"] / result["seconds"] if result["seconds"] else 0
    rss = f"  peak RSS {result['rss_mib']:6.1f} MiB" if "rss_mib" in result else ""
    return (
        f"  {name:<8} {result['objects']:>7} objects  {result['seconds']:7.2f} s  "
        f"{rate:7.0f} objects/s{rss}"
    )


def measure(args, env, kube, workers: int) -> dict[str, dict]:
    """Back the seeded namespaces up, then the rounds; the medians by run name."""
    from backups.engine.storage.layout import Layout
    from backups.engine.velero.reader import namespaces as backup_namespaces
    from locations.providers import get_provider

    runs: dict[str, list[dict]] = {"restore": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix="palette-bench-") as store:
        ws, a, b, location = rows(env, store)
        provider = get_provider(location)
        try:
            backup = make_backup(ws, a, location, provider, args.prefix)
            namespaces = backup_namespaces(provider, Layout(location.prefix), backup.name)
            for round_no in range(1, args.rounds + 1):
                stamp = f"{int(time.time()) % 100000:05d}"
                print(f"round {round_no}")
                # Alternate which goes first, so that a change in the machine's load
                # does not always favour the same one.
                order = ["restore", "floor"] if round_no % 2 else ["floor", "restore"]
                for name in order:
                    prefix = f"{name[:2]}{stamp}"
                    mapping = mapping_for(namespaces, args.prefix, prefix)
                    load = os.getloadavg()[0]
                    if name == "restore":
                        spec = {"store": store, "backup": backup.name, "sha256": backup.sha256,
                                "mapping": mapping, "name": f"bench-{prefix}",
                                "prefix": args.prefix}  # fmt: skip
                        result = run_child(spec, workers)
                        extra = result["outcomes"]
                    else:
                        row = restore_row(ws, backup, b, mapping, f"bench-{prefix}", args.prefix)
                        plan, discovery = plan_for_floor(row, provider, kube)
                        result = run_floor(plan, discovery, kube, workers)
                        extra = result["statuses"]
                        del plan
                    runs[name].append(result)
                    print(describe(name, result), extra, f"(load average before: {load:.1f})")
                    print(f"  (clean-up {delete_namespaces(kube, prefix):.0f} s)", flush=True)
        finally:
            provider.close()

    print("medians")
    medians = {
        name: {
            key: statistics.median(r[key] for r in results)
            for key in ("objects", "seconds", "rss_mib")
            if key in results[0]
        }
        for name, results in runs.items()
    }
    for name, median in medians.items():
        print(describe(name, median))
    restore, floor = medians["restore"], medians["floor"]
    rate = restore["objects"] / restore["seconds"]
    ratio = restore["seconds"] / floor["seconds"]
    print(
        f"  restore: {rate:.0f} objects/s; {ratio:.2f}x the floor "
        f"({'within' if ratio <= 1.1 else 'OVER'} the 1.1x target); peak RSS "
        f"{restore['rss_mib']:.0f} MiB ({'under' if restore['rss_mib'] < 256 else 'OVER'} 256 MiB)"
    )
    return medians


def main(argv=None) -> int:
    from benchmarks.scale import size_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size_arguments(parser)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="default: the engine's")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_django()

    from backups.engine.kube.api import Kube
    from backups.engine.restore import run as engine
    from benchmarks.backup import clear_objects, ensure_objects
    from benchmarks.scale import sizes, table
    from devenv import load_env

    if args.workers:
        engine.WORKERS = args.workers
    workers = engine.WORKERS
    if args.child:
        print(json.dumps(child_restore(json.loads(args.child))))
        return 0
    env = load_env()
    if not env.get("CLUSTER_A_KUBECONFIG") or not env.get("CLUSTER_B_KUBECONFIG"):
        sys.exit("clusters A and B are not up: run `make devenv` first")
    print(f"{os.cpu_count()} CPUs; {workers} parallel requests; rounds: {args.rounds}")
    kube = Kube(kubeconfig(env, "B"), pool_size=workers + 4)
    rows_ = []
    try:
        for size in sizes(args.sizes or str(args.objects)):
            print(f"== {size} objects (load average {os.getloadavg()[0]:.1f})", flush=True)
            ensure_objects(env, size, args.prefix, args.seed)
            rows_.append((size, measure(args, env, kube, workers)))
    finally:
        kube.close()
        if args.cleanup:  # even after a failure
            clear_objects(env, args.prefix, args.seed)
    if rows_:
        table("restore", [(n, m.get("restore"), m.get("floor")) for n, m in rows_])
    return 0


if __name__ == "__main__":
    sys.exit(main())
