"""The API objects around a local cluster's node: the local-path-provisioner's namespace,
service account, configuration and default StorageClass; waiting for the node to be Ready."""

from __future__ import annotations

import json
import time

from kubernetes.client.rest import ApiException

from . import images, procs
from .clusters import Cluster
from .demo_objects import metadata
from .seed import _request, api_client, create, object_path

LOCAL_PATH_PROVISIONER = "rancher.io/local-path"

# The provisioner runs this pod (with its setup/teardown script) to create and remove a
# volume's directory; its image is Debian's static busybox, imported by devenv.
HELPER_POD = f"""apiVersion: v1
kind: Pod
metadata:
  name: helper-pod
spec:
  priorityClassName: system-node-critical
  tolerations:
    - key: node.kubernetes.io/disk-pressure
      operator: Exists
      effect: NoSchedule
  containers:
  - name: helper-pod
    image: {images.BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
"""


def local_path_objects(volumes_dir: str) -> list[dict]:
    from .nodes import LOCAL_PATH_NAMESPACE, LOCAL_PATH_SERVICE_ACCOUNT, STORAGE_CLASS_LOCAL

    ns = LOCAL_PATH_NAMESPACE
    paths = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [volumes_dir]}]}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(ns, tier="storage")},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(LOCAL_PATH_SERVICE_ACCOUNT, ns, tier="storage"),
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata("local-path-config", ns, tier="storage"),
            "data": {
                "config.json": json.dumps(paths, indent=2),
                "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                "helperPod.yaml": HELPER_POD,
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                **metadata(STORAGE_CLASS_LOCAL, tier="storage"),
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": LOCAL_PATH_PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    ]


def apply_local_path_objects(c: Cluster, volumes_dir: str) -> None:
    """Create the objects; the configuration is replaced, so that a changed one applies (the
    provisioner reads it when it starts)."""
    api = api_client(str(c.kubeconfig), pool=4)
    try:
        for obj in local_path_objects(volumes_dir):
            if create(api, obj) == "exists" and obj["kind"] == "ConfigMap":
                _request(api, "PUT", object_path(obj, name=True), body=obj)
    finally:
        api.close()


def node_ready(c: Cluster, name: str) -> bool:
    api = api_client(str(c.kubeconfig), pool=1)
    try:
        node = json.loads(_request(api, "GET", f"/api/v1/nodes/{name}"))
    except ApiException:
        return False
    finally:
        api.close()
    conditions = {x["type"]: x["status"] for x in node.get("status", {}).get("conditions", [])}
    taints = {t["key"] for t in node.get("spec", {}).get("taints") or []}
    return conditions.get("Ready") == "True" and "node.kubernetes.io/not-ready" not in taints


def wait_node_ready(c: Cluster, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node_ready(c, name):
            return
        time.sleep(0.5)
    raise procs.ServiceError(
        f"node {name} of cluster {c.name} not Ready (and untainted) within {timeout:.0f}s; "
        f"see {procs.config.LOG_DIR}/kubelet-{c.name}.log"
    )
