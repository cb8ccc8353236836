"""Fill a cluster with a realistic mix of objects for the demo, the tests and the benchmarks.

``seed(kubeconfig)`` creates namespaces ``shop``, ``billing`` and ``monitoring`` with
deployments (whose replica sets and pods the controller manager makes), services (ClusterIP
and NodePort), config maps, secrets, service accounts, roles and bindings, a CRD
``widgets.demo.palette.io`` with custom resources, PVs bound to PVCs, a storage class and
cluster roles with bindings. Every object carries ``app.kubernetes.io/part-of=palette-demo``
and a ``tier`` label, so label selectors mean something. Running it again is harmless.

``seed(kubeconfig, many=20000, namespaces=100)`` also creates N small config maps, secrets
and services spread over ``bulk-000`` ... namespaces, with bounded concurrency, for the
backup and restore benchmarks.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .demo_objects import (
    APPS,
    CRD_GROUP,
    bulk_object,
    cluster_objects,
    crd,
    metadata,
    namespace_objects,
)

# kind -> (API prefix, plural, namespaced)
KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "CustomResourceDefinition": (
        "/apis/apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        False,
    ),
    "Widget": (f"/apis/{CRD_GROUP}/v1", "widgets", True),
}


def api_client(kubeconfig: str, pool: int = 32) -> client.ApiClient:
    """An ApiClient whose connection pool allows ``pool`` parallel requests."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


def object_path(obj: dict, name: bool = False) -> str:
    prefix, plural, namespaced = KINDS[obj["kind"]]
    meta = obj["metadata"]
    path = (
        f"{prefix}/namespaces/{meta['namespace']}/{plural}" if namespaced else f"{prefix}/{plural}"
    )
    return f"{path}/{meta['name']}" if name else path


def _request(api: client.ApiClient, method: str, path: str, body=None) -> bytes:
    """One raw request (no model objects: deserialising costs more than the network)."""
    method, url, headers, body, post = api.param_serialize(
        method,
        path,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method, url, header_params=headers, body=body, post_params=post)
    data = resp.read()
    if not 200 <= resp.status <= 299:
        err = ApiException(status=resp.status, reason=resp.reason)
        err.body = data
        raise err
    return data


def _exists(api: client.ApiClient, obj: dict) -> bool:
    try:
        _request(api, "GET", object_path(obj, name=True))
    except ApiException:
        return False
    return True


def create(api: client.ApiClient, obj: dict, retries_on_404: int = 0) -> str:
    """POST ``obj``; "created", or "exists" on 409 Conflict."""
    for attempt in range(retries_on_404 + 1):
        try:
            _request(api, "POST", object_path(obj), body=obj)
            return "created"
        except ApiException as err:
            if err.status == 409:
                return "exists"
            # Validation can run before the existence check (a NodePort "already allocated"
            # to the very object we are re-creating): the object is there, that is fine.
            if err.status == 422 and _exists(api, obj):
                return "exists"
            if err.status == 404 and attempt < retries_on_404:
                time.sleep(0.5)  # a new CRD's endpoint takes a moment to be served
                continue
            raise
    return "created"


def _wait_crd_established(api: client.ApiClient, name: str, timeout: float = 30) -> None:
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = json.loads(_request(api, "GET", path))
        conds = {c["type"]: c["status"] for c in doc.get("status", {}).get("conditions", [])}
        if conds.get("Established") == "True":
            return
        time.sleep(0.2)
    raise TimeoutError(f"CRD {name} not Established after {timeout}s")


def seed_demo(api: client.ApiClient, log=print) -> Counter:
    """Create the demo mix; return how many objects of each kind it consists of."""
    counts: Counter = Counter()
    results: Counter = Counter()
    for obj in [crd(), *cluster_objects()]:
        results[create(api, obj)] += 1
        counts[obj["kind"]] += 1
    _wait_crd_established(api, f"widgets.{CRD_GROUP}")
    for ns in APPS:
        for obj in namespace_objects(ns):
            results[create(api, obj, retries_on_404=20 if obj["kind"] == "Widget" else 0)] += 1
            counts[obj["kind"]] += 1
    log(
        f"demo objects ({results['created']} created, {results['exists']} already there): "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )
    return counts


def seed_many(
    api: client.ApiClient,
    many: int,
    namespaces: int = 100,
    workers: int = 16,
    prefix: str = "bulk",
    log=print,
) -> Counter:
    """Create ``many`` objects over the namespaces ``<prefix>-000`` ... with ``workers``
    parallel requests (a third each config maps, secrets and ClusterIP services)."""
    namespaces = max(1, min(namespaces, many or 1))
    for k in range(namespaces):
        create(
            api,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": metadata(f"{prefix}-{k:03d}", **{"palette.io/bulk": "true"}),
            },
        )
    counts: Counter = Counter()
    lock = threading.Lock()
    started = time.monotonic()
    last = [started]

    def one(i: int) -> None:
        result = create(api, bulk_object(i, namespaces, prefix))
        with lock:
            counts[result] += 1
            done = counts["created"] + counts["exists"]
            now = time.monotonic()
            if now - last[0] >= 2 or done == many:
                last[0] = now
                log(f"  {done}/{many} objects ({done / (now - started):.0f} objects/s)")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(one, i) for i in range(many)]:
            future.result()
    took = time.monotonic() - started
    log(
        f"many objects: {counts['created']} created, {counts['exists']} already there, "
        f"in {namespaces} namespaces, {took:.1f}s ({many / took if took else 0:.0f} objects/s)"
    )
    return counts


def seed(
    kubeconfig_path,
    many: int = 0,
    namespaces: int = 100,
    workers: int = 16,
    log=print,
    stateful: bool = False,
) -> Counter:
    """Seed the demo mix into the cluster of ``kubeconfig_path``, plus ``many`` bulk objects;
    ``stateful``: also the demo app with known data on each local storage class the cluster
    has (:mod:`devenv.stateful`; a local cluster's node runs it)."""
    api = api_client(kubeconfig_path, pool=max(workers, 4))
    try:
        counts = seed_demo(api, log=log)
        if stateful:
            from . import clusters, images
            from . import stateful as stateful_apps

            classes = stateful_apps.available_classes(api)
            if classes:
                kubectl = clusters.binary("kubectl")
                image = images.DEMO_APP_IMAGE
                sums = stateful_apps.seed_stateful(
                    api, str(kubeconfig_path), kubectl, image, classes, log=log
                )
                counts["stateful app"] = len(sums)
        if many:
            counts.update(
                {
                    f"bulk {k}": v
                    for k, v in seed_many(api, many, namespaces, workers, log=log).items()
                }
            )
        return counts
    finally:
        api.close()
