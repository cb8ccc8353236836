"""Versions, ports and paths of the local test environment (one place to change them)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
GO_DIR = PACKAGE_DIR / "go"

# Runtime state of the running environment: inside the checkout, gitignored.
STATE_DIR = Path(os.environ.get("PALETTE_DEVENV_DIR", REPO_DIR / ".devenv"))
ENV_FILE = STATE_DIR / "env"
LOG_DIR = STATE_DIR / "logs"
PID_DIR = STATE_DIR / "pids"

# Build outputs: outside the checkout, so that a fresh clone on the same machine reuses them.
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "palette-devenv"

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
# MinIO has no usable module tags: a pseudo-version of its main branch. The commit of its
# last release (9e49d5e7a648) is refused by the Go module proxy here ("403 This module
# version is not available"); @latest resolves to this one, whose go.mod has no replace.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
FAKE_GCS_VERSION = "v1.55.1"
AZURITE_VERSION = "3.35.0"
# The worker nodes (NODES.md): containerd, runc, CNI plugins, local-path-provisioner.
CONTAINERD_VERSION = "v2.4.2"
RUNC_VERSION = "v1.5.3"
CNI_PLUGINS_VERSION = "v1.10.0"
LOCAL_PATH_VERSION = "v0.0.30"
# The CSI machinery around devenv's own driver (devenv/csi.py).
CSI_PROVISIONER_VERSION = "v6.4.0"
CSI_SNAPSHOTTER_VERSION = "v8.7.0"
CSI_SANITY_VERSION = "v5.6.0"
# Velero itself and its AWS plugin (devenv/velero.py), for the compatibility tests. Velero
# pins k8s.io/cli-runtime v0.33.12, which the Go module proxy refuses; v0.33.13 builds.
VELERO_VERSION = "v1.18.3"
VELERO_AWS_PLUGIN_VERSION = "v1.14.3"
VELERO_CLI_RUNTIME = "v0.33.13"

HOST = "127.0.0.1"

# Fixed ports, chosen away from the usual defaults so a developer's own services do not clash.
PORTS = {
    "etcd-a": 12379,
    "etcd-peer-a": 12380,
    "apiserver-a": 16443,
    "controller-manager-a": 16257,
    "kube-scheduler-a": 16259,
    "kubelet-a": 11250,
    "kubelet-healthz-a": 11248,
    "etcd-b": 22379,
    "etcd-peer-b": 22380,
    "apiserver-b": 26443,
    "controller-manager-b": 26257,
    "kube-scheduler-b": 26259,
    "kubelet-b": 21250,
    "kubelet-healthz-b": 21248,
    "minio": 19000,
    "minio-console": 19001,
    "moto": 15000,
    "fake-gcs": 14443,
    "azurite": 10100,
    "postgres": 15432,
    "redis": 16379,
}
# The CSI driver's health endpoint and the CSI sidecars' metrics, per cluster (devenv/csi.py).
PORTS.update(
    {
        f"{piece}-{c}": base + offset
        for c, base in (("a", 16610), ("b", 26610))
        for offset, piece in enumerate(
            ("csi-hostpath", "csi-provisioner", "csi-snapshotter", "snapshot-controller")
        )
    }
)

MINIO_USER = "palette-minio"
MINIO_PASSWORD = "palette-minio-secret"  # noqa: S105 - a local test server's password

MOTO_ACCOUNT = "123456789012"  # moto's default account: other accounts see an empty S3
MOTO_ACCESS_KEY = "testing"
MOTO_SECRET_KEY = "testing"  # noqa: S105 - moto does not check signatures

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, well-known development key (public, not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

POSTGRES_USER = "palette"
POSTGRES_PASSWORD = "palette-test"  # noqa: S105 - a private local test database
POSTGRES_DB = "palette_test"


def component_cache(name: str, version: str) -> Path:
    return CACHE_DIR / f"{name}-{version}"
