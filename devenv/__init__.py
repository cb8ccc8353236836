"""The local test environment: two real Kubernetes clusters and the object stores.

``python -m devenv up`` builds what is missing (cached outside the checkout), starts what is
not running and writes ``.devenv/env``; ``down`` stops exactly what it started; ``status``
tells what runs; ``seed`` fills a cluster with a realistic mix of objects.

Python API:

- :func:`load_env` -> dict of ``.devenv/env``;
- :func:`devenv.cli.up`, :func:`devenv.cli.down`, :func:`devenv.cli.status`;
- :func:`devenv.seed.seed`;
- :func:`devenv.clusters.stop_component`, :func:`devenv.clusters.start_component`,
  :func:`devenv.clusters.write_local_targets`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import ENV_FILE


def load_env(path: str | Path | None = None) -> dict[str, str]:
    """Read ``.devenv/env`` (KEY=VALUE lines) into a dict; empty if the file is missing."""
    path = Path(path) if path else ENV_FILE
    env: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return env
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        env[key.strip()] = value
    return env


def write_env(values: dict[str, str], path: str | Path | None = None) -> Path:
    """Write ``values`` as KEY=VALUE lines, atomically (readers never see half a file)."""
    path = Path(path) if path else ENV_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    lines = ["# Written by `python -m devenv up`; one KEY=VALUE a line, no quoting."]
    lines += [f"{k}={v}" for k, v in values.items()]
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


__all__ = ["load_env", "write_env"]
