"""Seeding and clearing the large-cluster benchmarks' objects, shared by backup.py and
restore.py.

``seed(kube, objects, prefix)`` makes sure the cluster holds the first ``objects`` objects
of the mix (``devenv.scale_objects``) in namespaces ``<prefix>-0000`` ...: a namespace
already marked complete is skipped without listing its objects, the others are filled
with concurrent creates (an object that exists counts as made), then marked. A second
run therefore costs one LIST of namespaces. ``trim`` deletes the namespaces past a size,
``clear`` all of them (and waits until they are gone, bounded).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from devenv.scale_objects import (
    COMPLETE,
    LABEL,
    PER_NAMESPACE,
    namespace_name,
    namespace_object,
    namespaces_for,
    scale_object,
)

SEED_WORKERS = 32
PATHS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "Widget": "/apis/demo.palette.io/v1/namespaces/{ns}/widgets",
}


def sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def _target(kube):
    from backups.engine.restore.target import Target

    return Target(kube, None)


def scale_namespaces(kube, prefix: str) -> dict[str, bool]:
    """The benchmark's namespaces in the cluster: name -> complete (and not deleting)."""
    doc = kube.get_json("/api/v1/namespaces", {"labelSelector": f"{LABEL}={prefix}"})
    found = {}
    for ns in doc.get("items") or ():
        meta = ns["metadata"]
        deleting = bool(meta.get("deletionTimestamp"))
        found[meta["name"]] = not deleting and COMPLETE in (meta.get("annotations") or {})
    return found


def ensure_definition(kubeconfig_path: str) -> None:
    """The demo's Widget definition, which the mix's custom resources need."""
    from devenv import seed as demo_seed
    from devenv.demo_objects import CRD_GROUP, crd

    api = demo_seed.api_client(kubeconfig_path, pool=2)
    try:
        demo_seed.create(api, crd())
        demo_seed._wait_crd_established(api, f"widgets.{CRD_GROUP}")
    finally:
        api.close()


def seed(kube, objects: int, prefix: str, log=print, workers: int = SEED_WORKERS,
         etcd=None) -> int:  # fmt: skip
    """Make sure the first ``objects`` objects exist; returns how many were created.
    With ``etcd`` (a ``scale_etcd.Etcd``), the first namespace is created through the API
    and most objects of the others are written to etcd after it (``scale_etcd.py``)."""
    target = _target(kube)
    have = scale_namespaces(kube, prefix)
    wanted = [namespace_name(k, prefix) for k in range(namespaces_for(objects))]
    todo = [k for k, name in enumerate(wanted) if not have.get(name)]
    if not todo:
        log(f"  {objects} objects already seeded in {len(wanted)} namespaces ({prefix}-*)")
        return 0
    how = "through the API" if etcd is None else "into etcd, and the first through the API"
    log(f"  seeding {len(todo)} of {len(wanted)} namespaces ({PER_NAMESPACE} objects each, "
        f"{how})")  # fmt: skip
    made = [0]
    lock = threading.Lock()
    started = time.monotonic()

    def create(path: str, body: dict) -> None:
        response = target.request("POST", path, body)
        if not response.ok and response.status != 409:
            raise RuntimeError(f"creating {path}: {response.describe()}")
        if response.ok:
            with lock:
                made[0] += 1

    def one(i: int) -> None:
        obj = scale_object(i, prefix)
        create(PATHS[obj["kind"]].format(ns=obj["metadata"]["namespace"]), obj)

    def mark(k: int) -> None:  # full: a later run skips it
        if min(objects, (k + 1) * PER_NAMESPACE) - k * PER_NAMESPACE == PER_NAMESPACE:
            patch = {"metadata": {"annotations": {COMPLETE: str(PER_NAMESPACE)}}}
            target.request("PATCH", f"/api/v1/namespaces/{wanted[k]}", patch,
                           content_type="application/merge-patch+json")  # fmt: skip

    def through_api(ks: list[int]) -> None:
        indices = [
            i for k in ks for i in range(k * PER_NAMESPACE, min(objects, (k + 1) * PER_NAMESPACE))
        ]
        for done, _ in enumerate(pool.map(one, indices), 1):
            if done % 5000 == 0 or done == len(indices):
                took = time.monotonic() - started
                log(f"    {done}/{len(indices)} objects ({made[0] / took:.0f} created/s)")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda k: create("/api/v1/namespaces", namespace_object(k, prefix)), todo))
        if etcd is None:
            through_api(todo)
        else:
            made[0] += _seed_etcd(kube, etcd, objects, prefix, todo, through_api, pool, one, log)
        list(pool.map(mark, todo))
    log(f"  seeded in {time.monotonic() - started:.0f} s")
    return made[0]


def _seed_etcd(kube, etcd, objects, prefix, todo, through_api, pool, one, log) -> int:
    from benchmarks import scale_etcd

    if 0 in todo:  # the templates: created through the API
        through_api([0])
    rest = [k for k in todo if k != 0]
    if not rest:
        return 0
    templates = scale_etcd.read_templates(kube, prefix)
    indices = [i for k in rest for i in scale_etcd.namespace_indices(k, objects)]
    api = [i for i in indices if scale_etcd.through_api(i)]
    log(f"    {len(api)} Services with a cluster IP through the API")
    list(pool.map(one, api))
    written = scale_etcd.write_objects(
        etcd, [i for i in indices if not scale_etcd.through_api(i)], prefix, templates, log
    )
    problems = scale_etcd.verify(kube, etcd, prefix, rest[0], objects, log)
    if problems:
        raise RuntimeError(
            "etcd-written objects differ from created ones: " + "; ".join(problems[:5])
        )
    return written


def delete_namespaces(kube, names: list[str], timeout: float = 1800, log=print) -> float:
    """Delete ``names`` and wait (bounded) until they are gone; the seconds it took."""
    target = _target(kube)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: target.request("DELETE", f"/api/v1/namespaces/{n}"), names))
    left = set(names)
    while left and time.monotonic() - started < timeout:
        doc = kube.get_json("/api/v1/namespaces")
        left &= {ns["metadata"]["name"] for ns in doc.get("items") or ()}
        if left:
            time.sleep(3)
    if left:
        log(f"  {len(left)} namespaces still being deleted after {timeout:.0f} s")
    return time.monotonic() - started


def trim(kube, objects: int, prefix: str, log=print, etcd=None) -> None:
    """Delete the benchmark's namespaces past the first ``objects`` objects."""
    keep = {namespace_name(k, prefix) for k in range(namespaces_for(objects))}
    extra = sorted(set(scale_namespaces(kube, prefix)) - keep)
    if extra:
        log(f"  deleting {len(extra)} namespaces past {objects} objects")
        if etcd is not None:
            from benchmarks.scale_etcd import clear_etcd

            clear_etcd(etcd, extra)
        delete_namespaces(kube, extra, log=log)


def clear(kube, prefix: str, log=print, etcd=None) -> None:
    """Delete the benchmark's namespaces; with ``etcd``, first the kinds seeded into
    etcd, by key range (``scale_etcd.clear_etcd``)."""
    names = sorted(scale_namespaces(kube, prefix))
    if names and etcd is not None:
        from benchmarks.scale_etcd import clear_etcd

        started = time.monotonic()
        deleted = clear_etcd(etcd, names)
        log(f"  deleted {deleted} keys from etcd ({time.monotonic() - started:.0f} s)")
    if names:
        took = delete_namespaces(kube, names, log=log)
        log(f"  deleted {len(names)} namespaces {prefix}-* ({took:.0f} s)")


def peak_rss_mib() -> float:
    """This process's peak resident memory, in MiB. ``VmHWM`` starts anew at exec, where
    ``getrusage``'s maximum keeps the parent's (a child forked from a large benchmark
    process would report the parent's peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def size_arguments(parser) -> None:
    """The options every large-cluster benchmark takes."""
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--sizes", help="several sizes, e.g. 20000,100000,300000")
    parser.add_argument("--prefix", default="scale", help="the seeded namespaces' prefix")
    parser.add_argument("--cleanup", action="store_true", help="delete them at the end")
    parser.add_argument(
        "--seed",
        choices=["api", "etcd"],
        default="api",
        help="create the objects through the API server, or write most of them into "
        "cluster A's etcd (benchmarks/scale_etcd.py; minutes instead of an hour at 300k)",
    )


def table(job: str, rows: list[tuple[int, dict | None, dict | None]]) -> None:
    """One line per size: the job's medians (objects, seconds, rss_mib) against the floor's."""
    print(f"size      objects  {job + ' s':>10}  objects/s  peak RSS MiB  floor s  ratio")
    for size, run, floor in rows:
        if not run or not floor:
            print(f"{size:>7}  (no successful run)")
            continue
        print(
            f"{size:>7}  {run['objects']:>7.0f}  {run['seconds']:10.2f}  "
            f"{run['objects'] / run['seconds']:9.0f}  {run['rss_mib']:12.0f}  "
            f"{floor['seconds']:7.2f}  {run['seconds'] / floor['seconds']:5.2f}x"
        )
