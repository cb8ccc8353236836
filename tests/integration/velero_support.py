"""Helpers of the Velero compatibility tests: a source namespace on cluster A holding a copy
of the seeded mix plus a CRD of its own with custom resources, and an object-by-object
comparison of what a restore put on cluster B."""

from __future__ import annotations

import contextlib
import copy
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from backups.engine.kube.api import ApiError, Kube
from backups.engine.restore.sanitize import SanitizeOptions, differences, sanitize
from devenv import velero
from devenv.demo_objects import namespace_objects
from devenv.testing import wait_for
from tests import factories
from workspaces.kube import flatten_kubeconfig

SEEDED = "shop"  # the seeded namespace whose mix the source namespace copies
PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PersistentVolume": "persistentvolumes",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Widget": "widgets",
    "Gizmo": "gizmos",
}


@dataclass
class Source:
    """The objects of the test's namespace on A (and its cluster-scoped ones)."""

    namespace: str
    group: str  # the API group of its own CRD
    objects: list[dict] = field(default_factory=list)

    @property
    def crd_name(self) -> str:
        return f"gizmos.{self.group}"

    @property
    def volume(self) -> str:
        return f"{self.namespace}-data"


def _group_resource(obj: dict) -> str:
    group = obj["apiVersion"].rpartition("/")[0]
    plural = PLURALS[obj["kind"]]
    return f"{plural}.{group}" if group else plural


def path_of(obj: dict, namespace: str | None = None, name: str | None = None) -> str:
    version = obj["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    ns = namespace if namespace is not None else obj["metadata"].get("namespace")
    where = f"/namespaces/{ns}" if ns else ""
    return f"{base}{where}/{PLURALS[obj['kind']]}/{name or obj['metadata']['name']}"


def gizmo_crd(group: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gizmos.{group}", "labels": {"palette.io/test": "velero"}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "teeth": {"type": "integer"},
                                        "finish": {"type": "string"},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def source_objects(namespace: str, group: str) -> list[dict]:
    """The seeded mix of ``shop``, moved to ``namespace``: its volume renamed after it, its
    node ports left to the cluster (two copies must not ask for the same one), one replica
    each; then two custom resources of the namespace's own CRD."""
    objects = []
    for original in namespace_objects(SEEDED):
        obj = copy.deepcopy(original)
        meta = obj["metadata"]
        if obj["kind"] == "Namespace":
            meta["name"] = namespace
            meta["labels"]["palette.io/test"] = "true"
        elif meta.get("namespace"):
            meta["namespace"] = namespace
        spec = obj.get("spec") or {}
        if obj["kind"] == "PersistentVolume":
            meta["name"] = f"{namespace}-data"
            spec["claimRef"]["namespace"] = namespace
            spec["hostPath"]["path"] = f"/var/lib/palette-demo/{namespace}"
        elif obj["kind"] == "PersistentVolumeClaim":
            spec["volumeName"] = f"{namespace}-data"
        elif obj["kind"] == "Service":
            for port in spec["ports"]:
                port.pop("nodePort", None)
        elif obj["kind"] == "Deployment":
            spec["replicas"] = 1
        elif obj["kind"] == "RoleBinding":
            for subject in obj["subjects"]:
                subject["namespace"] = namespace
        objects.append(obj)
    for name, teeth in (("small-gear", 12), ("large-gear", 48)):
        objects.append(
            {
                "apiVersion": f"{group}/v1",
                "kind": "Gizmo",
                "metadata": {"name": name, "namespace": namespace, "labels": {"size": name}},
                "spec": {"teeth": teeth, "finish": "brushed"},
            }
        )
    return objects


def create(kubectl: str, kubeconfig: str, objects: list[dict]) -> None:
    """``kubectl create`` (not apply: no last-applied annotation, which would carry the
    source namespace's name and, for Velero, count node ports as explicitly set)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, fh)
        fh.flush()
        run(kubectl, kubeconfig, "create", "-f", fh.name)


def run(kubectl: str, kubeconfig: str, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr.strip()}"
    return proc.stdout


def create_source(devenv: dict, namespace: str, group: str) -> Source:
    """Create the source namespace's objects on A; the CRD first, Established."""
    kubectl, kubeconfig = devenv["KUBECTL"], devenv["CLUSTER_A_KUBECONFIG"]
    source = Source(namespace, group, [gizmo_crd(group), *source_objects(namespace, group)])
    create(kubectl, kubeconfig, source.objects[:1])
    run(kubectl, kubeconfig, "wait", "--for=condition=Established", "--timeout=120s",
        f"customresourcedefinitions/{source.crd_name}")  # fmt: skip
    create(kubectl, kubeconfig, source.objects[1:])
    return source


def wait_bound(kube: Kube, namespace: str, timeout: float = 120) -> None:
    def bound():
        doc = kube.get_json(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data")
        return (doc.get("status") or {}).get("phase") == "Bound"

    wait_for(bound, timeout, f"claim {namespace}/data to be Bound")


def delete_source(devenv: dict, source: Source, cluster: str, namespace: str) -> None:
    """Delete what a test made on ``cluster``: the namespace, its volume and the CRD."""
    kubectl = devenv["KUBECTL"]
    kubeconfig = devenv[f"CLUSTER_{cluster.upper()}_KUBECONFIG"]
    for args in (
        ("namespace", namespace),
        ("persistentvolume", source.volume),
        ("customresourcedefinition", source.crd_name),
    ):
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            run(kubectl, kubeconfig, "delete", *args, "--ignore-not-found", "--wait=false")


def get(kube: Kube, path: str) -> dict | None:
    try:
        return kube.get_json(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def compare(
    source: Source,
    kube_a: Kube,
    kube_b: Kube,
    mapping: dict[str, str],
    backup_name: str,
    restore_name: str,
) -> dict[str, list[str]]:
    """Each source object on A against its restored copy on B, after the stripping a
    restore does (the console's rules, which follow Velero's): {object: differing paths},
    with "missing" for an object B lacks. Empty when every object came back equal."""
    options = SanitizeOptions(backup_name, restore_name, mapping)
    found: dict[str, list[str]] = {}
    for obj in source.objects:
        meta = obj["metadata"]
        on_a = get(kube_a, path_of(obj))
        assert on_a is not None, f"{path_of(obj)} vanished from cluster A"
        gr = _group_resource(obj)
        desired = sanitize(gr, json.loads(json.dumps(on_a)), options)
        name = mapping.get(meta["name"], meta["name"]) if obj["kind"] == "Namespace" else None
        target_ns = mapping.get(meta.get("namespace", ""), meta.get("namespace"))
        on_b = get(kube_b, path_of(obj, namespace=target_ns, name=name))
        key = f"{obj['kind']} {target_ns + '/' if target_ns else ''}{name or meta['name']}"
        if on_b is None:
            found[key] = ["missing"]
            continue
        diff = differences(gr, desired, on_b)
        if diff:
            found[key] = diff
    return found


def kubeconfig(devenv, which: str) -> str:
    path = Path(devenv[f"CLUSTER_{which}_KUBECONFIG"])
    return flatten_kubeconfig(path.read_text(), path.parent)


def minio_location(devenv, world, name: str, prefix: str):
    """A console location on the test's MinIO bucket (``world["bucket"]``) at ``prefix``."""
    return factories.location(
        world["ws"], name, provider="minio", bucket=world["bucket"], prefix=prefix,
        endpoint_url=devenv["MINIO_ENDPOINT"], force_path_style=True,
        credentials={"access_key": devenv["MINIO_ACCESS_KEY"],
                     "secret_key": devenv["MINIO_SECRET_KEY"]},
    )  # fmt: skip


def start_velero(devenv, world, cluster: str, prefix: str, features=()) -> velero.Server:
    """A Velero server on ``cluster`` over the test's bucket at ``prefix``; the test's
    fixture stops it (``world["servers"]``)."""
    server = velero.start(cluster, world["bucket"], prefix, devenv_env=devenv, features=features)
    world["servers"].append(server)
    return server


def velero_report(server: velero.Server, kind: str, name: str) -> str:
    """What Velero says of a backup or restore, for a failing assertion's message."""
    parts = []
    for args in ((kind, "describe", name, "--details", "--colorized=false"), (kind, "logs", name)):
        try:
            parts.append(server.cli(*args))
        except velero.VeleroError as exc:
            parts.append(str(exc))
    return "\n".join(parts)[-6000:]
