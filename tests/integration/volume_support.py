"""Shared helpers of the volume tests: an application with a claim, its files' checksums,
a console with both clusters, and waits."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

from django.conf import settings

from backups.jobs import run_and_wait, start_backup, start_restore
from devenv.testing import kubectl, wait_for
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

BUSYBOX = "localhost/palette-devenv/busybox:1"
# The sizes are 1,000 files of 200 MiB in all plus one 100 MiB file; CI keeps the
# suite short, so the default is a tenth of that. PALETTE_VOLUME_TEST_MIB=300 runs it in full.
TOTAL_MIB = int(os.environ.get("PALETTE_VOLUME_TEST_MIB", "30"))


def use_devenv_mover() -> None:
    settings.PALETTE_MOVER_IMAGE = BUSYBOX


def console(devenv, tmp_path):
    """A workspace with both clusters and a filesystem location."""
    use_devenv_mover()
    ws = factories.workspace("Volumes")
    clusters = {}
    for key in ("A", "B"):
        path = Path(devenv[f"CLUSTER_{key}_KUBECONFIG"])
        clusters[key] = Cluster.objects.create(
            workspace=ws, name=f"vol-{key.lower()}",
            kubeconfig=flatten_kubeconfig(path.read_text(), path.parent),
        )  # fmt: skip
    location = factories.location(ws, "disk", path=str(tmp_path))
    return ws, clusters, location


def app_objects(namespace: str, storage_class: str, image: str, *, command=None, size="1Gi",
                annotations=None, name="store") -> list[dict]:  # fmt: skip
    container = {
        "name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }  # fmt: skip
    if command:
        container["command"] = command
    return [
        {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{name}-data", "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": size}}},
        },
        {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1, "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
                    "spec": {"containers": [container], "terminationGracePeriodSeconds": 0,
                             "volumes": [{"name": "data", "persistentVolumeClaim": {
                                 "claimName": f"{name}-data"}}]},
                },
            },
        },
    ]  # fmt: skip


def apply(devenv, cluster: str, objects: list[dict]) -> None:
    key = f"CLUSTER_{cluster.upper()}_KUBECONFIG"
    subprocess.run(
        [devenv["KUBECTL"], f"--kubeconfig={devenv[key]}", "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        text=True, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def running_pod(devenv, cluster: str, namespace: str, app: str = "store", timeout=180) -> str:
    def find():
        out = kubectl(devenv, "-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json",
                      cluster=cluster)  # fmt: skip
        for pod in json.loads(out)["items"]:
            ready = all(c.get("ready") for c in pod["status"].get("containerStatuses") or [{}])
            if (
                pod["status"].get("phase") == "Running"
                and ready
                and not pod["metadata"].get("deletionTimestamp")
            ):
                return pod["metadata"]["name"]
        return None

    return wait_for(find, timeout, f"a Running pod of {namespace}/{app} in cluster {cluster}")


def in_pod(devenv, cluster: str, namespace: str, pod: str, *argv: str, timeout=600) -> str:
    return kubectl(devenv, "-n", namespace, "exec", pod, "--", *argv, cluster=cluster,
                   timeout=timeout)  # fmt: skip


def write_data(devenv, cluster, namespace, pod, total_mib: int = TOTAL_MIB) -> str:
    """1,000 files holding two thirds of ``total_mib`` and one file of a third; the sums."""
    many, big = (total_mib * 2 // 3) << 20, (total_mib // 3) << 20
    in_pod(devenv, cluster, namespace, pod, "app", "write", "--dir", "/data/many", "--files",
           "1000", "--bytes", str(many))  # fmt: skip
    in_pod(devenv, cluster, namespace, pod, "app", "write", "--dir", "/data/big", "--files", "1",
           "--bytes", str(big))  # fmt: skip
    return checksums(devenv, cluster, namespace, pod)


def checksums(devenv, cluster, namespace, pod) -> str:
    return in_pod(devenv, cluster, namespace, pod, "app", "checksum", "--dir", "/data")


def backup(cluster, location, namespace, **options):
    row = start_backup(cluster, location, include_namespaces=[namespace], include_disks=True,
                       **options)  # fmt: skip
    return run_and_wait(row)


def restore(backup_row, target, mapping: dict, **options):
    row = start_restore(backup_row, target, namespace_mapping=mapping, restore_pvs=True,
                        include_namespaces=list(mapping), **options)  # fmt: skip
    return run_and_wait(row)


def leftovers(devenv, cluster: str, row, wait: float = 60.0) -> list[str]:
    """Objects of the job ``row`` still in the cluster (pods, claims, snapshots), after
    waiting up to ``wait`` seconds for deletions in progress to finish."""
    from backups.engine_inputs import operation_label

    label = f"palette.io/operation={operation_label(row)}"
    deadline = time.monotonic() + wait
    while True:
        found = []
        for kind in ("pods", "pvc", "volumesnapshots", "volumesnapshotcontents"):
            out = kubectl(devenv, "get", kind, "-A", "-l", label, "-o", "name", cluster=cluster)
            found += [line for line in out.split() if line]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1)


@contextlib.contextmanager
def namespaces(devenv, *pairs):
    """Delete the (cluster, namespace) pairs afterwards, without waiting."""
    try:
        yield
    finally:
        for cluster, name in pairs:
            with contextlib.suppress(Exception):
                kubectl(devenv, "delete", "namespace", name, "--wait=false", cluster=cluster)


def create_namespace(devenv, cluster: str, name: str) -> None:
    kubectl(devenv, "create", "namespace", name, cluster=cluster)
