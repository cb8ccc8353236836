"""The engine runs without the console: benchmarks/engine_standalone.py, in a process with
no Django settings, backs cluster A up into a directory in Velero's layout."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from backups.engine.storage.layout import Layout
from devenv.seed import create

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VELERO_FILES = (
    "metadata", "archive", "logs", "results", "resource-list", "volumesnapshots",
    "podvolumebackups", "itemoperations", "volumeinfo",
)  # fmt: skip


def test_a_script_without_django_backs_cluster_a_up_into_a_directory(
    devenv, kube_a, fresh_namespace, tmp_path
):
    ns = fresh_namespace
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": ns},
          "data": {"k": "v"}}  # fmt: skip
    create(kube_a, cm)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine_standalone", str(tmp_path), "--name", "solo",
         "--namespace", ns],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    layout = Layout("velero")
    for kind in VELERO_FILES:
        path = tmp_path / layout.backup_file("solo", kind)
        assert path.is_file(), f"{kind} missing"
        assert f"wrote {layout.backup_file('solo', kind)} (" in proc.stdout
    doc = json.loads((tmp_path / layout.backup_file("solo", "metadata")).read_text())
    assert doc["status"]["phase"] == "Completed" and doc["spec"]["includedNamespaces"] == [ns]
    listing = json.loads(
        gzip.decompress((tmp_path / layout.backup_file("solo", "resource-list")).read_bytes())
    )
    assert f"{ns}/kept" in listing["v1/ConfigMap"]
    with tarfile.open(tmp_path / layout.backup_file("solo", "archive")) as tar:
        member = tar.extractfile(f"resources/configmaps/namespaces/{ns}/kept.json")
        assert json.load(member)["data"] == {"k": "v"}
