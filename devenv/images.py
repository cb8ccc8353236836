"""Container images without a registry: single-layer OCI archives built from local programs.

:func:`build_image` packs files (our static Go programs, Debian's static busybox) into an OCI
image-layout tar whose index names the image under one or more references, and caches it by
content under ``~/.cache/palette-devenv/images/``. :func:`import_image` loads it into a node's
containerd (``ctr -n k8s.io images import``) unless that containerd already has it.

The images the clusters use are described in :data:`IMAGES`; a later image (the console's
volume mover) is one more :class:`Image` built with the same function.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from . import config, gobuild, procs

PAUSE_IMAGE = "localhost/palette-devenv/pause:1"
DEMO_APP_IMAGE = "localhost/palette-devenv/app:1"
BUSYBOX_IMAGE = "localhost/palette-devenv/busybox:1"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class Image:
    """An image: ``files`` maps a path in the image to a file on this machine (copied with its
    mode); ``links`` maps a path in the image to a symlink target."""

    names: tuple[str, ...]
    files: dict[str, Path]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.names[0]


def _tar_info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def layer_tar(image: Image) -> bytes:
    """The image's only layer: a deterministic tar (same inputs, same digest)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {"tmp"}
        for path in [*image.files, *image.links]:
            parts = path.strip("/").split("/")[:-1]
            dirs |= {"/".join(parts[: i + 1]) for i in range(len(parts))}
        for d in sorted(dirs):
            tar.addfile(_tar_info(d + "/", tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        for path, source in sorted(image.files.items()):
            data = source.read_bytes()
            mode = source.stat().st_mode & 0o777
            tar.addfile(
                _tar_info(path.strip("/"), tarfile.REGTYPE, mode, len(data)), io.BytesIO(data)
            )
        for path, target in sorted(image.links.items()):
            info = _tar_info(path.strip("/"), tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _blob(data: bytes) -> tuple[str, dict]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return digest, {"digest": digest, "size": len(data)}


def oci_archive(image: Image) -> tuple[bytes, str]:
    """The OCI image-layout tar of ``image`` and its manifest digest."""
    layer = layer_tar(image)
    layer_digest, layer_desc = _blob(layer)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": list(image.entrypoint),
            "Cmd": list(image.cmd),
            "Env": ["PATH=/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "palette devenv (devenv/images.py)"}],
    }
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_digest, config_desc = _blob(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config_desc},
        "layers": [{"mediaType": OCI_LAYER, **layer_desc}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest, manifest_desc = _blob(manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **manifest_desc,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
            for name in image.names
        ],
    }
    entries = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
    }
    for digest, data in (
        (layer_digest, layer),
        (config_digest, config_bytes),
        (manifest_digest, manifest_bytes),
    ):
        entries["blobs/sha256/" + digest.split(":", 1)[1]] = data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs/", "blobs/sha256/"):
            tar.addfile(_tar_info(d, tarfile.DIRTYPE, 0o755))
        for name, data in entries.items():
            tar.addfile(_tar_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return buf.getvalue(), manifest_digest


def build_image(image: Image) -> tuple[Path, str]:
    """Write ``image``'s archive into the cache (once per content); return (path, digest)."""
    archive, digest = oci_archive(image)
    out_dir = config.CACHE_DIR / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = image.name.rsplit("/", 1)[-1].replace(":", "-")
    path = out_dir / f"{slug}-{digest.split(':', 1)[1][:16]}.tar"
    if not path.exists():
        tmp = path.with_suffix(".partial")
        tmp.write_bytes(archive)
        tmp.rename(path)
    return path, digest


def _ctr(ctr: list[str], *args: str) -> str:
    proc = subprocess.run([*ctr, "-n", "k8s.io", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise procs.ServiceError(f"ctr {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def images_present(ctr: list[str]) -> dict[str, str]:
    """{image name: manifest digest} of what a containerd (``ctr`` argv prefix) holds."""
    out = _ctr(ctr, "images", "ls")
    found = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            found[parts[0]] = parts[2]
    return found


def import_image(ctr: list[str], image: Image, present: dict[str, str] | None = None) -> bool:
    """Import ``image`` into the containerd of ``ctr`` unless it is there; True if imported."""
    path, digest = build_image(image)
    present = images_present(ctr) if present is None else present
    if all(present.get(name) == digest for name in image.names):
        return False
    _ctr(ctr, "images", "import", str(path))
    return True


def demo_image_names() -> tuple[str, ...]:
    """The image names of the seeded demo Deployments: they all run the demo app."""
    from .demo_objects import APPS, demo_image

    return tuple(demo_image(app) for apps in APPS.values() for app, _tier, _port in apps)


def busybox_links() -> dict[str, str]:
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    return {f"/bin/{a}": "busybox" for a in applets if a and a != "busybox"}


def cluster_images() -> list[Image]:
    """Every image a node needs: pause (the sandbox), the demo app, busybox (for the
    local-path-provisioner's helper pods)."""
    programs = gobuild.IMAGE_PROGRAMS.paths()
    found = [
        Image((PAUSE_IMAGE,), {"/pause": programs["pause"]}, ("/pause",)),
        Image(
            (DEMO_APP_IMAGE, *demo_image_names()),
            {"/bin/app": programs["app"]},
            ("/bin/app",),
            ("serve",),
        ),
    ]
    if BUSYBOX.exists():
        found.append(
            Image((BUSYBOX_IMAGE,), {"/bin/busybox": BUSYBOX}, ("/bin/sh",), (), busybox_links())
        )
    return found
