"""`python -m devenv up | down | status | seed | build | gomod`."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from . import clusters, config, databases, gobuild, nodes, procs, stores, velero, write_env

REGISTER_HINT = (
    "To use your own cluster instead, register it with the console:\n"
    "    .venv/bin/python manage.py register_cluster NAME --workspace W --kubeconfig FILE\n"
    "        [--etcd-endpoint URL --etcd-ca F --etcd-cert F --etcd-key F]"
)


_lock = procs.devenv_lock


class _Report:
    def __init__(self, log):
        self.log = log
        self.rows: list[tuple[str, str, str]] = []
        self.failed = False

    def add(self, name: str, state: str, detail: str = "") -> None:
        self.rows.append((name, state, detail))
        if state == "FAILED":
            self.failed = True
        self.log(f"{name:26} {state:11} {detail}".rstrip())


def _build(comp: gobuild.Component, report: _Report, timings: dict, log) -> bool:
    if gobuild.is_built(comp):
        timings[comp.name] = "cached"
        return True
    if gobuild.go_binary() is None:
        timings[comp.name] = "no Go"
        return False
    try:
        timings[comp.name] = f"{gobuild.build(comp, log=log):.0f}s"
        return True
    except gobuild.BuildError as err:
        timings[comp.name] = "FAILED"
        report.add(f"build {comp.name}", "FAILED", str(err))
        return False


def up(log=print) -> int:
    """Build what is missing, start what is not running, write .devenv/env. 0 unless a failure."""
    started = time.monotonic()
    report = _Report(log)
    env: dict[str, str] = {}
    timings: dict[str, str] = {}
    up_names: list[str] = []
    with _lock():
        config.STATE_DIR.mkdir(parents=True, exist_ok=True)
        # Stores and databases that need no Go first: they are up while Go builds run.
        for store in stores.STORES:
            if store.name in gobuild.COMPONENTS:
                _build(gobuild.COMPONENTS[store.name], report, timings, log)
            try:
                store.provide(log)
                state = procs.ensure(store.service(), log=log)
            except stores.Unavailable as err:
                report.add(store.name, "unavailable", str(err))
                continue
            except (procs.ServiceError, RuntimeError, OSError) as err:
                report.add(store.name, "FAILED", str(err))
                continue
            env.update(store.env())
            up_names.append(store.name)
            report.add(store.name, state, store.env().get(_endpoint_key(store.name), ""))
        for name, (start, env_of) in databases.DATABASES.items():
            try:
                state = start(log)
            except databases.Unavailable as err:
                report.add(name, "unavailable", f"{err}; the integration tests that need it fail")
                continue
            except (procs.ServiceError, RuntimeError, OSError) as err:
                report.add(name, "FAILED", str(err))
                continue
            env.update(env_of())
            up_names.append(name)
            report.add(name, state, next(iter(env_of().values())))
        have_go = gobuild.go_binary() is not None
        built = all(
            [
                _build(gobuild.ETCD, report, timings, log),
                _build(gobuild.KUBERNETES, report, timings, log),
            ]
        )
        if built:
            try:
                results = clusters.start(log=log)
                for name, state in results.items():
                    report.add(name, state)
                env.update(clusters.env())
                targets = clusters.write_local_targets(config.STATE_DIR / "etcd-local-targets.json")
                env["ETCD_LOCAL_TARGETS_FILE"] = str(targets)
                up_names += ["cluster-a", "cluster-b"]
            except (procs.ServiceError, RuntimeError, OSError) as err:
                report.add("clusters", "FAILED", str(err))
            else:
                up_names += _nodes_up(report, env, timings, log)
            up_names += _velero_built(report, env, timings, log)
        elif not have_go:
            report.add("clusters a, b", "unavailable", "Go is not installed")
            log(
                "\nNo local Kubernetes clusters could be built: kube-apiserver and etcd are "
                "built from Go modules, and Go (>= 1.26) is not installed on this machine.\n"
                + REGISTER_HINT
            )
        env["DEVENV_COMPONENTS"] = ",".join(up_names)
        write_env(env)
    if timings:
        log("builds: " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    log(f"wrote {config.ENV_FILE} ({len(env)} keys)")
    verdict = "FAILED" if report.failed else "ready"
    log(f"devenv {verdict} in {time.monotonic() - started:.1f}s: up: {', '.join(up_names)}")
    return 1 if report.failed else 0


def _csi():
    """devenv/csi.py (the CSI driver and its sidecars) if it offers up() and down()."""
    try:
        from . import csi
    except ImportError:
        return None
    return csi if hasattr(csi, "up") and hasattr(csi, "down") else None


def _nodes_up(report: _Report, env: dict, timings: dict, log) -> list[str]:
    """Build and start each cluster's worker node (then the CSI pieces); names that are up."""
    if not all([_build(comp, report, timings, log) for comp in gobuild.NODE_COMPONENTS]):
        return []
    csi = _csi()
    # Built here, so that their build times are reported and a failed build only loses CSI.
    if csi is not None and not all(
        [_build(comp, report, timings, log) for comp in gobuild.CSI_COMPONENTS]
    ):
        csi = None
    started, csi_up = [], False
    for name in clusters.CLUSTERS:
        try:
            for svc, state in nodes.up(name, log=log).items():
                report.add(svc, state)
        except (procs.ServiceError, RuntimeError, OSError) as err:
            report.add(f"node-{name}", "FAILED", str(err))
            continue
        started.append(f"node-{name}")
        if csi is not None:
            try:
                for svc, state in csi.up(name, log=log).items():
                    report.add(svc, state)
                csi_up = True
            except (procs.ServiceError, RuntimeError, OSError) as err:
                report.add(f"csi-{name}", "FAILED", str(err))
    if started:
        env.update(nodes.env([n[-1] for n in started]))
    if csi_up:
        env.update(csi.env())
    return started


def _velero_built(report: _Report, env: dict, timings: dict, log) -> list[str]:
    """Build Velero and its AWS plugin (the tests start their servers, devenv/velero.py)."""
    if not all([_build(comp, report, timings, log) for comp in gobuild.VELERO_COMPONENTS]):
        return []
    env.update(velero.env())
    report.add("velero", "built", velero.velero_bin())
    return ["velero"]


def nodes_down(log=print) -> list[str]:
    """Stop the worker nodes (and the CSI pieces) and undo what they did to the machine;
    return what is left behind (empty when all went)."""
    csi = _csi()
    for name in clusters.CLUSTERS:
        if csi is not None:
            for stopped in csi.down(name):
                log(f"stopped {stopped}")
        for stopped in nodes.down(name):
            log(f"stopped {stopped}")
    return nodes.clean(log=log)


def _endpoint_key(name: str) -> str:
    return {
        "minio": "MINIO_ENDPOINT",
        "moto": "S3_ENDPOINT",
        "fake-gcs-server": "GCS_ENDPOINT",
        "azurite": "AZURE_BLOB_ENDPOINT",
    }[name]


def down(log=print) -> int:
    """Stop every process that `up` started (and only those); 1 if one survived."""
    with _lock():
        groups = procs.tracked_groups()
        velero.stop_all(log=log)  # before the clusters they talk to
        left_by_nodes = nodes_down(log=log)
        order = [
            clusters.CLUSTERS[n].service_name(c)
            for n in "ab"
            for c in reversed(clusters.COMPONENTS)
        ]
        order += [n for n in procs.tracked_names() if n not in order]
        for name in order:
            if procs.stop(name):
                log(f"stopped {name}")
        left = procs.processes_in_groups(set(groups.values())) + left_by_nodes
    if left:
        log("still running after down:\n  " + "\n  ".join(left))
        return 1
    log(f"devenv stopped ({len(groups)} services); no process of ours is left")
    return 0


def _services() -> list[procs.Service]:
    found = []
    if clusters.binaries_available():
        for component in clusters.COMPONENTS:
            for c in clusters.CLUSTERS.values():
                found.append(clusters.SERVICE_FACTORIES[component](c))
    if nodes.binaries_available():
        for c in clusters.CLUSTERS.values():
            found += nodes.services(c)
    csi = _csi()
    if csi is not None and csi.binaries_available():
        for c in clusters.CLUSTERS.values():
            found += csi.services(c)
    for store in stores.STORES:
        with contextlib.suppress(Exception):
            found.append(store.service())
    if databases.postgres_bin_dir() is not None:
        found.append(databases._postgres_service())
    if databases._redis_server() is not None:
        found.append(databases._redis_service())
    return found


def status_dict() -> dict[str, str]:
    """{service name: "running" | "stopped" | "not answering"} for every known service."""
    out = {}
    for svc in _services():
        pid = procs.running_pid(svc.name)
        if pid is None:
            out[svc.name] = "stopped"
        else:
            out[svc.name] = "running" if svc.ready() else "not answering"
    return out


def status(log=print) -> int:
    states = status_dict()
    for name, state in states.items():
        pid = procs.running_pid(name)
        log(f"{name:26} {state:14} {f'pid {pid}' if pid else ''}".rstrip())
    return 0 if states and all(s == "running" for s in states.values()) else 3


def _component(action: str, cluster: str, component: str) -> int:
    """``start`` prints started/running (exit 1 with the reason if it fails), ``stop``
    prints stopped/not running, ``ready`` exits 0 when the component answers."""
    if action == "ready":
        return 0 if clusters.component_ready(cluster, component) else 1
    if action == "stop":
        print("stopped" if clusters.stop_component(cluster, component) else "not running")
        return 0
    try:
        print(clusters.start_component(cluster, component, log=lambda line: None))
    except (procs.ServiceError, RuntimeError, OSError) as err:
        print(f"{component} of cluster {cluster} did not start: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build what is missing, start everything, write .devenv/env")
    sub.add_parser("down", help="stop every process that `up` started")
    sub.add_parser("status", help="what runs (exit 0 only if everything does)")
    build = sub.add_parser("build", help="only build the Go programs")
    build.add_argument("components", nargs="*", help=", ".join(gobuild.COMPONENTS))
    sub.add_parser("gomod", help="regenerate the wrapper go.mod files under devenv/go/")
    component = sub.add_parser(
        "component", help="start, stop or check one component of a local cluster"
    )
    component.add_argument("action", choices=("start", "stop", "ready"))
    component.add_argument("cluster", choices=sorted(clusters.CLUSTERS))
    component.add_argument("component", choices=clusters.COMPONENTS)
    seed = sub.add_parser("seed", help="fill a cluster with a realistic mix of objects")
    target = seed.add_mutually_exclusive_group(required=True)
    target.add_argument("--kubeconfig", help="kubeconfig of the cluster to fill")
    target.add_argument("--cluster", choices=sorted(clusters.CLUSTERS), help="a local cluster")
    seed.add_argument("--many", type=int, default=0, help="also create N small objects")
    seed.add_argument("--namespaces", type=int, default=100, help="spread --many over K")
    seed.add_argument("--workers", type=int, default=16, help="parallel requests for --many")
    seed.add_argument(
        "--stateful",
        action="store_true",
        help="also the demo app with known data in its volumes (default for --cluster a)",
    )
    args = parser.parse_args(argv)

    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    if args.command == "status":
        return status()
    if args.command == "build":
        for name in args.components or list(gobuild.COMPONENTS):
            if name not in gobuild.COMPONENTS:
                parser.error(
                    f"unknown component {name}; choose from {', '.join(gobuild.COMPONENTS)}"
                )
            took = gobuild.build(gobuild.COMPONENTS[name])
            print(f"{name}: {'cached' if not took else f'{took:.0f}s'}")
        return 0
    if args.command == "gomod":
        gobuild.generate_kubernetes_module()
        gobuild.generate_kubernetes_module(module_dir="kubenode")
        gobuild.generate_etcd_module()
        return 0
    if args.command == "component":
        return _component(args.action, args.cluster, args.component)
    if args.command == "seed":
        from .seed import seed as run_seed

        kubeconfig = args.kubeconfig or str(clusters.CLUSTERS[args.cluster].kubeconfig)
        run_seed(
            kubeconfig,
            many=args.many,
            namespaces=args.namespaces,
            workers=args.workers,
            stateful=args.cluster == "a" or args.stateful,
        )
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
