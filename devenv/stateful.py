"""The demo's stateful applications: the demo app with a volume holding known data.

In namespace ``inventory`` (cluster A), one Deployment per storage class, each with its own
claim mounted at ``/data``. The first seed writes random files into the volume with
``app write`` and stores what ``app checksum --dir /data`` printed in the ConfigMap
``<app>-checksums`` (key ``sha256sums``), so a check after a backup and restore knows what
the volume must hold. A later seed finds the ConfigMap and leaves the data alone.
"""

from __future__ import annotations

import json
import subprocess
import time

import urllib3
from kubernetes import client as kclient

from .demo_objects import PART_OF, metadata
from .seed import _request, create

NAMESPACE = "inventory"
DATA_FILES = 16
DATA_BYTES = 1 << 20


def objects(image: str, kind: str, storage_class: str) -> list[dict]:
    """The claim and Deployment of the stateful demo app on ``storage_class``."""
    app = f"store-{kind}"
    labels = {"app.kubernetes.io/name": app, "tier": "storage"}
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata(f"{app}-data", NAMESPACE, **labels),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": storage_class,
                "resources": {"requests": {"storage": "64Mi"}},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(app, NAMESPACE, **labels),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                "template": {
                    "metadata": {"labels": {**PART_OF, **labels}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "ports": [{"containerPort": 8080, "name": "http"}],
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "data",
                                "persistentVolumeClaim": {"claimName": f"{app}-data"},
                            }
                        ],
                    },
                },
            },
        },
    ]


def _running_pod(api, app: str, timeout: float) -> str:
    core = kclient.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pods = core.list_namespaced_pod(
                NAMESPACE, label_selector=f"app.kubernetes.io/name={app}"
            )
        except (kclient.ApiException, urllib3.exceptions.HTTPError):
            time.sleep(1)  # an apiserver restarting (an etcd restore drill next door)
            continue
        for pod in pods.items:
            if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp:
                return pod.metadata.name
        time.sleep(0.5)
    raise TimeoutError(f"no Running pod of {NAMESPACE}/{app} after {timeout:.0f}s")


def kubectl_exec(kubectl: str, kubeconfig: str, pod: str, *argv: str) -> str:
    out = subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, "-n", NAMESPACE, "exec", pod, "--", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"kubectl exec {pod} -- {' '.join(argv)}: {out.stderr.strip()}")
    return out.stdout


def available_classes(api) -> dict[str, str]:
    """kind -> storage class for the classes of the local nodes that this cluster has."""
    from .nodes import STORAGE_CLASS_LOCAL

    wanted = {"local": STORAGE_CLASS_LOCAL}
    try:
        from .csi import STORAGE_CLASS as STORAGE_CLASS_CSI

        wanted["csi"] = STORAGE_CLASS_CSI
    except ImportError:
        pass
    found = {}
    for kind, name in wanted.items():
        try:
            _request(api, "GET", f"/apis/storage.k8s.io/v1/storageclasses/{name}")
        except kclient.ApiException:
            continue
        found[kind] = name
    return found


def seed_stateful(
    api, kubeconfig: str, kubectl: str, image: str, classes: dict[str, str], log=print
) -> dict[str, str]:
    """Create the stateful apps (``classes``: kind -> storage class) and their known data;
    return {app: sha256sums}."""
    create(api, {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(NAMESPACE)})
    sums = {}
    for kind, storage_class in classes.items():
        app = f"store-{kind}"
        for obj in objects(image, kind, storage_class):
            create(api, obj)
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{app}-checksums"
        try:
            sums[app] = json.loads(_request(api, "GET", path))["data"]["sha256sums"]
            continue
        except kclient.ApiException as err:
            if err.status != 404:
                raise
        pod = _running_pod(api, app, timeout=120)
        kubectl_exec(
            kubectl, kubeconfig, pod, "app", "write", "--dir", "/data/seed",
            "--files", str(DATA_FILES), "--bytes", str(DATA_BYTES),
        )  # fmt: skip
        sums[app] = kubectl_exec(kubectl, kubeconfig, pod, "app", "checksum", "--dir", "/data")
        create(
            api,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata(f"{app}-checksums", NAMESPACE, tier="storage"),
                "data": {"sha256sums": sums[app]},
            },
        )
        log(f"stateful demo {NAMESPACE}/{app} on {storage_class}: {DATA_FILES} files written")
    return sums
