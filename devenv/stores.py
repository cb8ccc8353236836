"""The object stores: MinIO (real server), moto (S3 + STS), fake-gcs-server, Azurite.

Each store is a :class:`Store`: how to make its program available (build or install), the
service that runs it, and the ``.devenv/env`` keys that describe it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import config, gobuild, procs

H = config.HOST


class Unavailable(RuntimeError):
    """The store's program is not on this machine and cannot be made (e.g. no Go, no npm)."""


@dataclass
class Store:
    name: str
    provide: Callable[[Callable], None]  # build or install the program; may raise Unavailable
    service: Callable[[], procs.Service]
    env: Callable[[], dict[str, str]]


# --- MinIO ---------------------------------------------------------------------------------


def _provide_go(comp: gobuild.Component) -> Callable[[Callable], None]:
    def provide(log) -> None:
        if gobuild.is_built(comp):
            return
        if gobuild.go_binary() is None:
            raise Unavailable(f"{comp.name} is built with Go, and Go is not installed")
        gobuild.build(comp, log=log)

    return provide


def _minio_service() -> procs.Service:
    port = config.PORTS["minio"]
    data = config.STATE_DIR / "minio"
    data.mkdir(parents=True, exist_ok=True)
    return procs.Service(
        "minio",
        [
            str(gobuild.MINIO.paths()["minio"]),
            "server",
            "--quiet",
            "--address",
            f"{H}:{port}",
            "--console-address",
            f"{H}:{config.PORTS['minio-console']}",
            str(data),
        ],
        port,
        lambda: procs.http_ok(f"http://{H}:{port}/minio/health/ready"),
        env={
            "MINIO_ROOT_USER": config.MINIO_USER,
            "MINIO_ROOT_PASSWORD": config.MINIO_PASSWORD,
            "MINIO_UPDATE": "off",
            "MINIO_CI_CD": "1",
        },
    )


def _minio_env() -> dict[str, str]:
    return {
        "MINIO_ENDPOINT": f"http://{H}:{config.PORTS['minio']}",
        "MINIO_ACCESS_KEY": config.MINIO_USER,
        "MINIO_SECRET_KEY": config.MINIO_PASSWORD,
        "MINIO_CONSOLE": f"http://{H}:{config.PORTS['minio-console']}",
    }


# --- moto (S3 + STS) -------------------------------------------------------------------------


def _moto_server() -> Path:
    return Path(sys.executable).with_name("moto_server")


def _provide_moto(log) -> None:
    if not _moto_server().exists():
        raise Unavailable(f"moto[server] is not installed in {Path(sys.executable).parent}")


def _moto_service() -> procs.Service:
    port = config.PORTS["moto"]
    return procs.Service(
        "moto",
        [str(_moto_server()), "-H", H, "-p", str(port)],
        port,
        lambda: procs.http_ok(f"http://{H}:{port}/moto-api/data.json"),
        env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )


def _moto_env() -> dict[str, str]:
    return {
        "S3_ENDPOINT": f"http://{H}:{config.PORTS['moto']}",
        "S3_ACCESS_KEY": config.MOTO_ACCESS_KEY,
        "S3_SECRET_KEY": config.MOTO_SECRET_KEY,
        "S3_REGION": "us-east-1",
        "STS_ENDPOINT": f"http://{H}:{config.PORTS['moto']}",
        "STS_ROLE_ARN": f"arn:aws:iam::{config.MOTO_ACCOUNT}:role/palette-backup",
        "AWS_ACCOUNT_ID": config.MOTO_ACCOUNT,
    }


# --- Google Cloud Storage: fake-gcs-server ---------------------------------------------------


def _gcs_service() -> procs.Service:
    port = config.PORTS["fake-gcs"]
    root = config.STATE_DIR / "gcs"
    root.mkdir(parents=True, exist_ok=True)
    url = f"http://{H}:{port}"
    return procs.Service(
        "fake-gcs-server",
        [
            str(gobuild.FAKE_GCS.paths()["fake-gcs-server"]),
            "-scheme",
            "http",
            "-host",
            H,
            "-port",
            str(port),
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(root),
            # Without -external-url the resumable-upload session URLs point elsewhere.
            "-external-url",
            url,
            "-public-host",
            f"{H}:{port}",
            "-log-level",
            "warn",
        ],
        port,
        lambda: procs.http_ok(f"{url}/storage/v1/b?project=test"),
    )


def _gcs_env() -> dict[str, str]:
    return {"GCS_ENDPOINT": f"http://{H}:{config.PORTS['fake-gcs']}", "GCS_PROJECT": "test"}


# --- Azure Blob: Azurite -------------------------------------------------------------------


def azurite_dir() -> Path:
    return config.component_cache("azurite", config.AZURITE_VERSION)


def _azurite_main() -> Path:
    return azurite_dir() / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"


def _provide_azurite(log) -> None:
    if _azurite_main().exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("Azurite needs Node.js and npm (apt-get install -y nodejs npm)")
    target = azurite_dir()
    target.mkdir(parents=True, exist_ok=True)
    log(f"installing azurite@{config.AZURITE_VERSION} into {target} ...")
    started = time.monotonic()
    proc = subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(target),
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--loglevel=error",
            f"azurite@{config.AZURITE_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not _azurite_main().exists():
        raise RuntimeError(f"npm install azurite failed:\n{proc.stderr.strip()[-2000:]}")
    log(f"installed azurite {config.AZURITE_VERSION} in {time.monotonic() - started:.0f}s")


def _azurite_service() -> procs.Service:
    port = config.PORTS["azurite"]
    location = config.STATE_DIR / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    return procs.Service(
        "azurite",
        [
            shutil.which("node") or "node",
            str(_azurite_main()),
            "--blobHost",
            H,
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
        ],
        port,
        # Any HTTP answer (403 without a signature) means it serves.
        lambda: procs.http_ok(
            f"http://{H}:{port}/{config.AZURITE_ACCOUNT}?comp=list", accept=(200, 400, 403)
        ),
    )


def _azure_env() -> dict[str, str]:
    endpoint = f"http://{H}:{config.PORTS['azurite']}/{config.AZURITE_ACCOUNT}"
    return {
        "AZURE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName={config.AZURITE_ACCOUNT};"
            f"AccountKey={config.AZURITE_KEY};BlobEndpoint={endpoint};"
        ),
        "AZURE_ACCOUNT_NAME": config.AZURITE_ACCOUNT,
        "AZURE_ACCOUNT_KEY": config.AZURITE_KEY,
        "AZURE_BLOB_ENDPOINT": endpoint,
    }


STORES = [
    Store("moto", _provide_moto, _moto_service, _moto_env),
    Store("azurite", _provide_azurite, _azurite_service, _azure_env),
    Store("minio", _provide_go(gobuild.MINIO), _minio_service, _minio_env),
    Store("fake-gcs-server", _provide_go(gobuild.FAKE_GCS), _gcs_service, _gcs_env),
]
