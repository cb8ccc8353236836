"""Restore benchmark: the engine against the floor, from cluster A into cluster B of `make devenv`.

    .venv/bin/python -m benchmarks.restore [--objects 20000] [--rounds 1] [--workers 24]

1. Makes sure cluster A holds at least N bulk objects in ``bulk-*`` namespaces
   (``devenv.seed`` bulk mode, shared with the backup benchmark; idempotent).
2. Backs those namespaces up with the backup engine into a temporary directory
   (not measured).
3. Each round, on cluster B (whose ``bulk-*`` namespaces are not touched), in
   alternating order:
   * the restore: ``run_restore`` of the backup under a namespace mapping
     ``bulk-NNN`` -> ``re<stamp>-NNN`` (fresh, empty namespaces), from download
     and checksum to the last object, with ``record`` collecting the results;
   * the floor: the same sanitized objects (planned by the engine beforehand, not
     measured) into other fresh namespaces ``fl<stamp>-NNN``: the namespaces, then
     every object, each a plain POST through the same client with the same number
     of parallel requests, and nothing else;
   then deletes the namespaces it created and waits until they are gone, so that
   no run pays for the previous one's clean-up.
4. Prints objects, seconds, objects/s for both, and the ratio.

Targets: at least 200 objects/s, within 1.5x of the floor. The script
only reports; it never fails on a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
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


def make_backup(ws, cluster, location, provider):
    from backups.engine.backup.run import run_backup
    from backups.engine_inputs import backup_request
    from backups.models import Backup

    backup = Backup(
        name=f"bench-restore-{int(time.time())}",
        workspace=ws,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        include_namespaces=["bulk-*"],
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


def restore_row(ws, backup, cluster, mapping: dict, name: str):
    from backups.models import Restore

    return Restore(
        name=name,
        backup=backup,
        backup_name=backup.name,
        workspace=ws,
        target_cluster=cluster,
        target_cluster_name=cluster.name,
        include_namespaces=["bulk-*"],
        namespace_mapping=mapping,
    )


def mapping_for(backup_namespaces: list[str], prefix: str) -> dict:
    return {ns: ns.replace("bulk-", f"{prefix}-", 1) for ns in backup_namespaces}


# --- the two measurements -----------------------------------------------------------------


def run_engine(row, provider) -> dict:
    from backups.engine.restore.run import run_restore
    from backups.engine_inputs import restore_request

    results: list = []
    request = restore_request(row, provider)
    started = time.perf_counter()
    outcome = run_restore(
        request, progress=lambda *a: None, log=lambda line: None, record=results.extend
    )
    seconds = time.perf_counter() - started
    counts = Counter(r.outcome for r in results)
    if outcome.phase != "Completed":
        print(f"  restore ended {outcome.phase}: {outcome.error} {dict(counts)}")
    return {"objects": outcome.total, "seconds": seconds, "outcomes": dict(counts)}


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


def delete_namespaces(kube, prefix: str, timeout: float = 900) -> float:
    """Delete the namespaces named ``<prefix>-*``; wait until they are gone."""
    started = time.perf_counter()

    def names() -> list[str]:
        doc = kube.get_json("/api/v1/namespaces")
        return [
            n["metadata"]["name"]
            for n in doc["items"]
            if n["metadata"]["name"].startswith(prefix + "-")
        ]

    from backups.engine.restore.target import Target

    target = Target(kube, None)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: target.request("DELETE", f"/api/v1/namespaces/{n}"), names()))
    while names() and time.perf_counter() - started < timeout:
        time.sleep(2)
    return time.perf_counter() - started


# --- report -------------------------------------------------------------------------------


def describe(name: str, result: dict) -> str:
    rate = result["objects"] / result["seconds"] if result["seconds"] else 0
    return (
        f"  {name:<8} {result['objects']:>7} objects  {result['seconds']:7.2f} s  "
        f"{rate:7.0f} objects/s"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="default: the engine's")
    args = parser.parse_args(argv)
    setup_django()

    from backups.engine.kube.api import Kube
    from backups.engine.restore import run as engine
    from benchmarks.backup import ensure_objects
    from devenv import load_env
    from locations.providers import get_provider

    env = load_env()
    if not env.get("CLUSTER_A_KUBECONFIG") or not env.get("CLUSTER_B_KUBECONFIG"):
        sys.exit("clusters A and B are not up: run `make devenv` first")
    if args.workers:
        engine.WORKERS = args.workers
    workers = engine.WORKERS
    ensure_objects(env, args.objects, args.namespaces)
    print(f"{os.cpu_count()} CPUs; {workers} parallel requests; rounds: {args.rounds}")
    runs: dict[str, list[dict]] = {"restore": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix="palette-bench-") as store:
        ws, a, b, location = rows(env, store)
        provider = get_provider(location)
        backup = make_backup(ws, a, location, provider)
        from backups.engine.storage.layout import Layout
        from backups.engine.velero.reader import namespaces as backup_namespaces

        namespaces = backup_namespaces(provider, Layout(location.prefix), backup.name)
        kube = Kube(b.kubeconfig, pool_size=workers + 4)
        try:
            for round_no in range(1, args.rounds + 1):
                stamp = f"{int(time.time()) % 100000:05d}"
                print(f"round {round_no}")
                # Alternate which goes first, so that a change in the machine's load
                # does not always favour the same one.
                order = ["restore", "floor"] if round_no % 2 else ["floor", "restore"]
                for name in order:
                    prefix = f"{name[:2]}{stamp}"
                    mapping = mapping_for(namespaces, prefix)
                    row = restore_row(ws, backup, b, mapping, f"bench-{prefix}")
                    load = os.getloadavg()[0]
                    if name == "restore":
                        result = run_engine(row, provider)
                        extra = result["outcomes"]
                    else:
                        plan, discovery = plan_for_floor(row, provider, kube)
                        result = run_floor(plan, discovery, kube, workers)
                        extra = result["statuses"]
                    runs[name].append(result)
                    print(describe(name, result), extra, f"(load average before: {load:.1f})")
                    print(f"  (clean-up {delete_namespaces(kube, prefix):.0f} s)")
        finally:
            kube.close()
            provider.close()

    print("medians")
    medians = {
        name: {
            "objects": statistics.median(r["objects"] for r in results),
            "seconds": statistics.median(r["seconds"] for r in results),
        }
        for name, results in runs.items()
    }
    for name, median in medians.items():
        print(describe(name, median))
    restore, floor = medians["restore"], medians["floor"]
    rate = restore["objects"] / restore["seconds"]
    ratio = restore["seconds"] / floor["seconds"]
    print(
        f"  restore: {rate:.0f} objects/s ({'at least' if rate >= 200 else 'UNDER'} the 200 "
        f"objects/s target); {ratio:.2f}x the floor "
        f"({'within' if ratio <= 1.5 else 'OVER'} the 1.5x target)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
