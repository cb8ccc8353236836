"""The objects of the large-cluster benchmarks: a realistic mix that needs no node.

``scale_object(i, prefix)`` is the i-th object of a large cluster: config maps (some with a
file-sized value), secrets (Opaque and TLS), services (mostly headless, so that hundreds of
thousands do not exhaust the service range), service accounts, Deployments with zero
replicas (the controller manager makes their ReplicaSets, and no pod is started), Roles,
RoleBindings and Widgets (custom resources of the demo's definition). Objects fill their
namespaces in order, ``PER_NAMESPACE`` each (``<prefix>-0000``, ``<prefix>-0001``, ...),
so that the first N objects are always the same N, whatever size was seeded before.

Every object and namespace carries the label ``palette.io/scale=<prefix>``; a namespace
whose objects were all created gets the annotation ``palette.io/scale-complete``, so that
seeding again skips it without looking at its objects.
"""

from __future__ import annotations

import base64

from .demo_objects import CRD_GROUP, demo_image

PER_NAMESPACE = 250
LABEL = "palette.io/scale"
COMPLETE = "palette.io/scale-complete"

# One cycle of the mix: (kind, how many of each 40 objects)
MIX = (
    ("ConfigMap", 12),
    ("Secret", 9),
    ("Service", 4),
    ("ServiceAccount", 4),
    ("Deployment", 2),
    ("Role", 3),
    ("RoleBinding", 3),
    ("Widget", 3),
)
_CYCLE = [kind for kind, count in MIX for _ in range(count)]
# Objects i and j have the same shape (kind, fields, keys) when i % CYCLE == j % CYCLE
# (the variants within a kind follow i % 5, i % 4 and i % 2, which divide it; i % 3
# changes only a value).
CYCLE = len(_CYCLE)
_TIERS = ("frontend", "backend", "ops", "data")


def namespace_name(k: int, prefix: str) -> str:
    return f"{prefix}-{k:04d}"


def namespaces_for(objects: int) -> int:
    return -(-objects // PER_NAMESPACE)


def namespace_object(k: int, prefix: str, complete: bool = False) -> dict:
    meta = {"name": namespace_name(k, prefix), "labels": {LABEL: prefix, "team": _TIERS[k % 4]}}
    if complete:
        meta["annotations"] = {COMPLETE: str(PER_NAMESPACE)}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


def _meta(name: str, ns: str, prefix: str, i: int, app: str) -> dict:
    return {
        "name": name,
        "namespace": ns,
        "labels": {
            LABEL: prefix,
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/part-of": f"suite-{i % 17}",
            "tier": _TIERS[i % 4],
        },
        "annotations": {"palette.io/owner": f"team-{i % 23}@example.com"},
    }


def scale_object(i: int, prefix: str) -> dict:
    """The i-th object (0-based): its namespace is ``i // PER_NAMESPACE``."""
    ns = namespace_name(i // PER_NAMESPACE, prefix)
    kind = _CYCLE[i % len(_CYCLE)]
    app = f"app-{(i // len(_CYCLE)) % 50:02d}"
    name = f"{kind.lower()}-{i:07d}"
    meta = _meta(name, ns, prefix, i, app)
    body = _BODIES[kind](i, name, app, ns)
    api_version = {"Deployment": "apps/v1", "Widget": f"{CRD_GROUP}/v1"}.get(kind, "v1")
    if kind in ("Role", "RoleBinding"):
        api_version = "rbac.authorization.k8s.io/v1"
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}


def _config_map(i: int, name: str, app: str, ns: str) -> dict:
    data = {"LOG_LEVEL": "info", "INSTANCE": str(i), "app.properties": f"id={i}\npool=8\n"}
    if i % 5 == 0:  # a config file of a few KiB, as real applications carry
        data["application.yaml"] = "".join(
            f"setting{k}: value-{i}-{k}  # explained in the runbook\n" for k in range(60)
        )
    return {"data": data}


def _secret(i: int, name: str, app: str, ns: str) -> dict:
    if i % 4 == 0:
        cert = "-----BEGIN CERTIFICATE-----\n" + "MIIB" * 300 + "\n-----END CERTIFICATE-----\n"
        key = "-----BEGIN PRIVATE KEY-----\n" + "MIIE" * 200 + "\n-----END PRIVATE KEY-----\n"
        return {"type": "kubernetes.io/tls", "data": {"tls.crt": _b64(cert), "tls.key": _b64(key)}}
    return {
        "type": "Opaque",
        "data": {"username": _b64(f"{app}-{i}"), "password": _b64(f"secret-{i:07d}-value")},
    }


def _service(i: int, name: str, app: str, ns: str) -> dict:
    spec = {
        "selector": {"app.kubernetes.io/name": app},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    }
    if i % 4:  # headless: no cluster IP taken from the service range
        spec["clusterIP"] = "None"
    return {"spec": spec}


def _service_account(i: int, name: str, app: str, ns: str) -> dict:
    return {"automountServiceAccountToken": bool(i % 2)}


def _deployment(i: int, name: str, app: str, ns: str) -> dict:
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": name}
    container = {
        "name": app,
        "image": demo_image("frontend"),
        "ports": [{"containerPort": 8080, "name": "http"}],
        "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(6)],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
    }
    return {
        "spec": {
            "replicas": 0,  # the benchmark starts no pod
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        }
    }


def _role(i: int, name: str, app: str, ns: str) -> dict:
    return {
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "watch"]},
        ]
    }


def _role_binding(i: int, name: str, app: str, ns: str) -> dict:
    return {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
    }


def _widget(i: int, name: str, app: str, ns: str) -> dict:
    return {"spec": {"size": ("small", "medium", "large")[i % 3], "color": "teal", "replicas": 1}}


_BODIES = {
    "ConfigMap": _config_map,
    "Secret": _secret,
    "Service": _service,
    "ServiceAccount": _service_account,
    "Deployment": _deployment,
    "Role": _role,
    "RoleBinding": _role_binding,
    "Widget": _widget,
}
