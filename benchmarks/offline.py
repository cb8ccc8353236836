"""Where time and memory go at scale, without a cluster: restore, preview, browsing, pages.

    .venv/bin/python -m benchmarks.offline [--objects 100000] [--only restore,preview,...]
                                           [--profile] [--tracemalloc]

Writes a backup of N objects of the large-cluster mix (``devenv.scale_objects``, with
the metadata a server adds: uid, resourceVersion, managedFields) into a temporary
directory with the engine's own archive writer, then measures, each in a fresh
process (so that peak RSS is that of one job, as a worker runs it):

* ``restore``: ``run_restore`` of the whole backup under a namespace mapping into a
  stand-in API server that answers every create at once (201): the engine's own
  cost per item, with the network out of the way;
* ``preview``: the same as a server-side dry run;
* ``contents``: the content browser's pages as the view makes them (``catalogue``:
  the index read once, then cached; the template rendered): page 1 cold and warm, a
  deep page, filtered pages; each against the 1 s target;
* ``item``: one item's YAML (``reader.find_item`` of the last object through the
  cached index), cold and warm;
* ``pages``: the backup's work per LIST page (decode, filter, tar records, gzip)
  against the floor's (continue token, gzip of the page) on the same pages.

``--profile`` prints cProfile's top functions, ``--tracemalloc`` the lines that
held the most memory at the point of the job's largest structures (after the
restore's plan; after the listing). The script only reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.offline_data import BACKUP, PREFIX, TYPES, NullKube, served_objects, write_backup

REPO = Path(__file__).resolve().parents[1]
MODES = ("restore", "preview", "contents", "item", "pages")


def rss_mib() -> float:
    from benchmarks.scale import peak_rss_mib

    return peak_rss_mib()


# --- the measurements (each in its own process) -------------------------------------------


def _request(directory: str, info: dict, preview: bool):
    from backups.engine.inputs import ClusterConnection, RestoreRequest, RestoreSpec, Store
    from devenv.scale_objects import namespace_name, namespaces_for
    from locations.providers.filesystem import FilesystemProvider

    provider = FilesystemProvider(directory, roots=[directory])
    count = namespaces_for(info["objects"])
    mapping = {namespace_name(k, PREFIX): namespace_name(k, "rs") for k in range(count)}
    return RestoreRequest(
        name="offline-restore",
        backup_name=BACKUP,
        cluster=ClusterConnection("null", kubeconfig=""),
        store=Store(provider, "offline", "velero"),
        spec=RestoreSpec(include_namespaces=(f"{PREFIX}-*",), namespace_mapping=mapping),
        backup_sha256=info["sha256"],
        preview=preview,
    )


def child_restore(directory: str, info: dict, preview: bool, snapshot) -> dict:
    from backups.engine.kube import api
    from backups.engine.restore import run

    api.Kube.connect = NullKube.connect  # the stand-in API server
    if snapshot is not None:
        planned = run.plan_restore

        def plan_and_look(*args):
            plan = planned(*args)
            snapshot("after the plan")
            return plan

        run.plan_restore = plan_and_look
        write = run.RestoreExecutor._write_artefacts

        def write_and_look(self):
            snapshot("after the last item")
            return write(self)

        run.RestoreExecutor._write_artefacts = write_and_look
    outcomes: Counter = Counter()

    def record(results):
        for r in results:
            outcomes[r.outcome] += 1

    request = _request(directory, info, preview)
    started = time.perf_counter()
    outcome = run.run_restore(request, progress=lambda *a: None, log=lambda line: None,
                              record=record)  # fmt: skip
    seconds = time.perf_counter() - started
    return {"objects": outcome.total, "seconds": seconds, "phase": outcome.phase,
            "outcomes": dict(outcomes)}  # fmt: skip


TARGET_SECONDS = 1.0  # a browsing answer (issue 19): listing page or one item's YAML


def _django() -> None:
    """Django loaded as in a web process (before any timing: a web process has it)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "palette_site.settings")
    os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")
    django.setup()


def _render_contents(page, kinds, wanted: dict) -> int:
    """The content browser's partial, rendered as the view renders it: its length."""
    from django.template.loader import render_to_string

    from backups.models import Backup
    from locations.models import BackupLocation

    backup = Backup(pk=1, name=BACKUP, location=BackupLocation(pk=1, name="offline"))
    context = {"backup": backup, "can_restore_items": True, "results": {}, "kinds": kinds,
               "page": page, "contents": page.rows, "filter": wanted, "query": ""}  # fmt: skip
    return len(render_to_string("backups/detail.html#contents", context))


def child_contents(directory: str, info: dict, snapshot) -> dict:
    """The content browser's pages as the view makes them (``browse.catalogue``: read
    once, then cached): page 1 with the cold read, page 1 again, a deep page, a
    namespace and name filter, a kind filter; each with the template rendered."""
    from backups.engine.storage.layout import Layout
    from backups.engine.velero import catalogue
    from devenv.scale_objects import namespace_name
    from locations.providers.filesystem import FilesystemProvider

    _django()
    provider = FilesystemProvider(directory, roots=[directory])
    key = ("offline", directory, info["sha256"])
    wanted = [
        ("page 1, cold", {}),
        ("page 1", {}),
        ("deep page", {"number": info["items"] // catalogue.PAGE_SIZE - 3}),
        ("namespace+name", {"namespace": namespace_name(7, PREFIX), "name": "1"}),
        ("kind, page 40", {"kind": "Secret", "number": 40}),
        ("name only", {"name": "99"}),
    ]
    timings, started = [], time.perf_counter()
    for label, query in wanted:
        began, cpu = time.perf_counter(), time.process_time()
        found = catalogue.load(provider, Layout("velero"), BACKUP, key, info["sha256"])
        page = found.page(**query)
        size = _render_contents(page, found.kinds(), {"number": 1, **query})
        timings.append((label, time.perf_counter() - began, time.process_time() - cpu,
                        page.total, page.number, size))  # fmt: skip
        if snapshot is not None and label == "page 1, cold":
            snapshot("after the first page")
    seconds = time.perf_counter() - started
    return {"objects": found.size, "seconds": seconds, "timings": timings,
            "indexed": found.index is not None}  # fmt: skip


def child_item(directory: str, info: dict) -> dict:
    """One item's YAML (the last object written): cold (the index read), then again."""
    from backups import browse
    from backups.engine.storage.layout import Layout
    from backups.engine.velero import catalogue, reader
    from devenv.scale_objects import scale_object
    from locations.providers.filesystem import FilesystemProvider

    provider = FilesystemProvider(directory, roots=[directory])
    last = scale_object(info["objects"] - 1, PREFIX)
    meta = last["metadata"]
    key = ("offline", directory, info["sha256"])
    timings, started = [], time.perf_counter()
    for label in ("item, cold", "item"):
        began, cpu = time.perf_counter(), time.process_time()
        found = catalogue.load(provider, Layout("velero"), BACKUP, key, info["sha256"])
        obj = reader.find_item(provider, Layout("velero"), BACKUP,
                               f"{last['apiVersion']}/{last['kind']}", meta["namespace"],
                               meta["name"], archive_index=found.index)  # fmt: skip
        text = browse.as_yaml(obj) if obj else ""
        timings.append((label, time.perf_counter() - began, time.process_time() - cpu,
                        1 if obj else 0, 1, len(text)))  # fmt: skip
    seconds = time.perf_counter() - started
    return {"objects": 1 if obj else 0, "seconds": seconds, "timings": timings,
            "indexed": found.index is not None}  # fmt: skip


def child_pages(info: dict) -> dict:
    """The engine's per-page work against the floor's, on LIST pages of the mix."""
    from backups.engine.backup.collect import PAGE_SIZE, Collector, Unit
    from backups.engine.kube.discovery import ResourceType
    from backups.engine.kube.pages import decode_page, page_token, type_prefix
    from backups.engine.velero.archive import new_gzip

    by_kind: dict[str, list[bytes]] = {}
    for kind, data in served_objects(info["objects"]):
        by_kind.setdefault(kind, []).append(data)
    pages = []
    for kind, items in by_kind.items():
        group, version, plural, namespaced = TYPES[kind]
        rt = ResourceType(group, version, plural, kind, namespaced)
        for start in range(0, len(items), PAGE_SIZE):
            chunk = items[start : start + PAGE_SIZE]
            more = start + PAGE_SIZE < len(items)
            meta = {"resourceVersion": "1", **({"continue": "abc"} if more else {})}
            page = b'{"kind":"List","apiVersion":"v1","metadata":%s,"items":[%s]}' % (
                json.dumps(meta).encode(),
                b",".join(chunk),
            )
            pages.append((rt, page))
    del by_kind
    collector = Collector(None, mtime=1_700_000_000, workers=1)
    gzip, started = new_gzip(), time.process_time()
    for _rt, page in pages:
        gzip.compress(page)
        page_token(page)
    gzip.flush()
    floor = time.process_time() - started
    gzip, started = new_gzip(), time.process_time()
    for rt, page in pages:
        unit = Unit(rt)
        batch = collector._batch(unit, decode_page(page).items,
                                 type_prefix(rt.api_version, rt.kind))  # fmt: skip
        gzip.compress(batch.records)
    gzip.flush()
    engine = time.process_time() - started
    collector.close()
    return {"objects": info["items"], "seconds": engine, "floor_seconds": floor}


def child(mode: str, directory: str, info: dict, profile: bool, trace: bool) -> dict:
    snapshot = None
    if trace:
        import tracemalloc

        tracemalloc.start(8)
        shots = []

        def snapshot(label: str) -> None:
            shots.append((label, tracemalloc.take_snapshot()))

    base, cpu = rss_mib(), time.process_time()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if mode in ("restore", "preview"):
        result = child_restore(directory, info, mode == "preview", snapshot)
    elif mode == "contents":
        result = child_contents(directory, info, snapshot)
    elif mode == "item":
        result = child_item(directory, info)
    else:
        result = child_pages(info)
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue(), file=sys.stderr)
    if trace:
        import tracemalloc

        current, peak = tracemalloc.get_traced_memory()
        print(f"tracemalloc: peak {peak / 2**20:.1f} MiB, now {current / 2**20:.1f} MiB",
              file=sys.stderr)  # fmt: skip
        for label, shot in shots:
            print(f"-- largest allocation sites {label}:", file=sys.stderr)
            for stat in shot.statistics("lineno")[:12]:
                print(f"   {stat}", file=sys.stderr)
    return {
        **result,
        "cpu": time.process_time() - cpu,
        "rss_mib": rss_mib(),
        "rss_before_mib": base,
    }


def run_child(mode: str, directory: str, info: dict, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.offline", "--child", mode, "--dir", directory,
           "--info", json.dumps(info)]  # fmt: skip
    cmd += ["--profile"] * args.profile + ["--tracemalloc"] * args.tracemalloc
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if args.profile or args.tracemalloc:
        print(done.stderr)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (done.stderr or done.stdout).strip()[-2000:]}


def describe(mode: str, n: int, result: dict) -> str:
    if "error" in result:
        return f"  {n:>7}  {mode:<9} FAILED: {result['error']}"
    rate = result["objects"] / result["seconds"] if result["seconds"] else 0
    extra = ""
    if "floor_seconds" in result:
        extra = f"  floor {result['floor_seconds']:.2f} s ({result['seconds'] / result['floor_seconds']:.2f}x)"
    line = (
        f"  {n:>7}  {mode:<9} {result['seconds']:7.2f} s (CPU {result['cpu']:6.2f} s) "
        f"{rate:8.0f} objects/s  "
        f"peak RSS {result['rss_mib']:6.1f} MiB (at start {result['rss_before_mib']:5.1f}){extra}"
    )
    if "timings" in result:
        line += "  (through the archive's index)" if result["indexed"] else "  (no index)"
    for label, seconds, cpu, total, number, size in result.get("timings", ()):
        verdict = "ok" if seconds < TARGET_SECONDS else "OVER"
        line += (
            f"\n  {'':>7}    {label:<16} {seconds:6.3f} s, CPU {cpu:6.3f} s (target "
            f"{TARGET_SECONDS:.0f} s: {verdict})  page {number}, {total} matching, "
            f"{size / 1024:.0f} KiB of HTML"
        )
    return line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--sizes", help="several sizes, e.g. 20000,100000,300000")
    parser.add_argument("--only", default=",".join(MODES))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--keep", help="keep the backups in this directory and reuse them")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.child:
        info = json.loads(args.info)
        print(json.dumps(child(args.child, args.dir, info, args.profile, args.tracemalloc)))
        return 0
    sizes = [int(s) for s in (args.sizes or str(args.objects)).split(",")]
    modes = [m for m in args.only.split(",") if m in MODES]
    print(f"{os.cpu_count()} CPUs; modes: {', '.join(modes)}")
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="palette-offline-") as scratch:
            directory = str(Path(args.keep) / str(n)) if args.keep else scratch
            saved = Path(directory) / "info.json"
            if saved.is_file():
                info = json.loads(saved.read_text())
            else:
                Path(directory).mkdir(parents=True, exist_ok=True)
                started = time.perf_counter()
                info = {**write_backup(directory, n), "objects": n}
                saved.write_text(json.dumps(info))
                print(f"backup of {info['items']} items ({info['size'] / 1e6:.1f} MB) written "
                      f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            for mode in modes:
                print(describe(mode, n, run_child(mode, directory, info, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
