"""The engine without the console: a backup of cluster A into a directory, no Django.

    .venv/bin/python -m benchmarks.engine_standalone DIRECTORY [--name NAME] [--namespace NS]

Reads cluster A's kubeconfig path from ``.devenv/env`` (``CLUSTER_A_KUBECONFIG``;
``PALETTE_DEVENV_DIR`` moves the directory), builds the engine's inputs by hand,
runs ``run_backup`` into DIRECTORY with the filesystem provider, and prints every
object it wrote with its size. Exit status 0 when the backup completed (or
partially failed), 1 otherwise. No settings module is configured, and the script
checks at the end that Django was never imported.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (what devenv writes), comments skipped."""
    lines = path.read_text().splitlines() if path.is_file() else []
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where the backup is written")
    parser.add_argument("--name", default="standalone", help="the backup's name")
    parser.add_argument("--namespace", action="append", default=[], help="only these (repeat)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from backups.engine.backup.run import run_backup
    from backups.engine.inputs import BackupRequest, BackupSpec, ClusterConnection, Store
    from locations.providers.filesystem import FilesystemProvider

    env = read_env(Path(os.environ.get("PALETTE_DEVENV_DIR", REPO / ".devenv")) / "env")
    kubeconfig = env.get("CLUSTER_A_KUBECONFIG")
    if not kubeconfig:
        print("cluster A is not up: run `make devenv` first", file=sys.stderr)
        return 2
    args.directory.mkdir(parents=True, exist_ok=True)
    provider = FilesystemProvider(str(args.directory), roots=[str(args.directory)])
    request = BackupRequest(
        name=args.name,
        cluster=ClusterConnection("cluster-a", Path(kubeconfig).read_text()),
        store=Store(provider, name="standalone", prefix="velero"),
        spec=BackupSpec(include_namespaces=tuple(args.namespace), ttl=timedelta(hours=24)),
    )
    outcome = run_backup(request, progress=lambda done, total, phase: None, log=print)
    for info in sorted(provider.list(request.store.layout.backup_dir(args.name)), key=str):
        print(f"wrote {info.key} ({info.size} bytes)")
    print(f"{outcome.phase}: {outcome.items} items, {outcome.size_bytes} bytes archived")
    if outcome.error:
        print(outcome.error, file=sys.stderr)
    if "django" in sys.modules:
        print("the engine imported Django", file=sys.stderr)
        return 3
    return 0 if outcome.phase in ("Completed", "PartiallyFailed") else 1


if __name__ == "__main__":
    sys.exit(main())
