"""The objects that `devenv seed` creates: the demo mix and the "many objects" mode.

Plain dicts (the JSON the API takes), so that they are easy to read, compare and reuse in
tests. Every demo object carries ``app.kubernetes.io/part-of=palette-demo`` and most a
``tier`` label; the bulk objects carry ``palette.io/bulk=true``.
"""

from __future__ import annotations

import base64

PART_OF = {"app.kubernetes.io/part-of": "palette-demo"}
CRD_GROUP = "demo.palette.io"
STORAGE_CLASS = "palette-standard"

# namespace -> [(app, tier, NodePort or None)]
APPS = {
    "shop": [
        ("frontend", "frontend", 30080),
        ("cart", "backend", None),
        ("catalog", "backend", None),
    ],
    "billing": [("invoices", "backend", None), ("payments", "backend", None)],
    "monitoring": [("metrics-collector", "ops", None), ("dashboard", "frontend", 30090)],
}


def demo_image(app: str) -> str:
    """The image of a demo Deployment (devenv imports the demo app under these names)."""
    return f"registry.example.com/palette-demo/{app}:1.4.2"


def metadata(name: str, namespace: str | None = None, **labels: str) -> dict:
    meta = {"name": name, "labels": {**PART_OF, **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def crd() -> dict:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "string", "enum": ["small", "medium", "large"]},
                    "color": {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 0},
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata(f"widgets.{CRD_GROUP}"),
        "spec": {
            "group": CRD_GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "shortNames": ["wd"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


def cluster_objects() -> list[dict]:
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": metadata(STORAGE_CLASS),
            "provisioner": "kubernetes.io/no-provisioner",
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata("palette-demo-reader", tier="ops"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "configmaps"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": [CRD_GROUP],
                    "resources": ["widgets"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata("palette-demo-reader", tier="ops"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "palette-demo-reader",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "metrics-collector", "namespace": "monitoring"}
            ],
        },
    ]


def namespace_objects(ns: str) -> list[dict]:
    objs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(ns, env="demo")}
    ]
    for app, tier, node_port in APPS[ns]:
        labels = {"app.kubernetes.io/name": app, "tier": tier}
        selector = {"app.kubernetes.io/name": app}
        objs += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(app, ns, **labels)},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata(f"{app}-config", ns, **labels),
                "data": {
                    "LOG_LEVEL": "info",
                    "FEATURE_FLAGS": "new-checkout,fast-search",
                    "app.yaml": f"name: {app}\nport: 8080\n",
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": metadata(f"{app}-credentials", ns, **labels),
                "type": "Opaque",
                "data": {"username": _b64(app), "password": _b64(f"{app}-demo-password")},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": metadata(app, ns, **labels),
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": selector},
                    "template": {
                        "metadata": {"labels": {**PART_OF, **labels}},
                        "spec": {
                            "serviceAccountName": app,
                            "containers": [
                                {
                                    "name": app,
                                    "image": demo_image(app),
                                    "ports": [{"containerPort": 8080, "name": "http"}],
                                    "envFrom": [{"configMapRef": {"name": f"{app}-config"}}],
                                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                                }
                            ],
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata(app, ns, **labels),
                "spec": {
                    "type": "NodePort" if node_port else "ClusterIP",
                    "selector": selector,
                    "ports": [
                        {
                            "name": "http",
                            "port": 80,
                            "targetPort": "http",
                            **({"nodePort": node_port} if node_port else {}),
                        }
                    ],
                },
            },
            {
                "apiVersion": f"{CRD_GROUP}/v1",
                "kind": "Widget",
                "metadata": metadata(f"{app}-widget", ns, **labels),
                "spec": {
                    "size": "medium" if tier == "backend" else "small",
                    "color": "teal",
                    "replicas": 2,
                },
            },
        ]
    objs += [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata("config-reader", ns, tier="ops"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps", "secrets"],
                    "verbs": ["get", "list"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata("config-reader", ns, tier="ops"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "config-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": APPS[ns][0][0], "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": metadata(f"{ns}-data", tier="storage"),
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": STORAGE_CLASS,
                "hostPath": {"path": f"/var/lib/palette-demo/{ns}"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": ns,
                    "name": "data",
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata("data", ns, tier="storage"),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": STORAGE_CLASS,
                "volumeName": f"{ns}-data",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]
    return objs


def bulk_object(i: int, namespaces: int, prefix: str = "bulk") -> dict:
    """The i-th object of the "many objects" mode: config maps, secrets and services in turn."""
    ns = f"{prefix}-{i % namespaces:03d}"
    kind = ("ConfigMap", "Secret", "Service")[i % 3]
    name = f"bulk-{kind.lower()}-{i:06d}"
    labels = {
        "palette.io/bulk": "true",
        "tier": ("frontend", "backend", "ops")[i % 3 if i % 7 else 0],
    }
    meta = metadata(name, ns, **labels)
    if kind == "ConfigMap":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "data": {"index": str(i), "settings.ini": f"[item]\nid={i}\nenabled=true\n"},
        }
    if kind == "Secret":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "type": "Opaque",
            "data": {"token": _b64(f"token-{i:06d}")},
        }
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": meta,
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
