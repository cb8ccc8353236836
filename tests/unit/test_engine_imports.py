"""The engine knows no Django: importing every one of its modules pulls in no app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, pkgutil, sys
import backups.engine as engine
names = [engine.__name__]
for info in pkgutil.walk_packages(engine.__path__, prefix=engine.__name__ + "."):
    names.append(info.name)
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""

# Top-level packages of the repository that are not the engine's.
FORBIDDEN = ("django", "palette_site", "workspaces", "locations", "devenv", "tests", "benchmarks")


def test_no_engine_module_imports_django_or_an_app():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    import json

    found = json.loads(proc.stdout.splitlines()[-1])
    assert len(found["imported"]) > 25  # the walk found the subpackages' modules
    assert "backups.engine.etcd.restore" in found["imported"]
    leaked = [
        name
        for name in found["loaded"]
        if name.split(".")[0] in FORBIDDEN
        or (name.startswith("backups.") and not name.startswith("backups.engine"))
    ]
    assert leaked == []
