"""Build the Go programs of the test environment, cached by version outside the checkout.

Each component lands in ``~/.cache/palette-devenv/<component>-<version>/bin`` with a stamp
file holding a hash of what it was built from, so an unchanged component is never rebuilt and
a fresh clone on the same machine reuses it. The Go build cache stays Go's default, so even a
rebuild after a wrapper change is quick.

kube-apiserver and etcd cannot be ``go install``-ed (their go.mod files carry replace
directives), so they are built from small wrapper modules committed under ``devenv/go/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import config

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl")
ETCD_BINARIES = ("etcd", "etcdctl", "etcdutl")


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    binaries: tuple[str, ...]
    # A wrapper module under devenv/go/<module_dir>, a `go install` target, or a module
    # (path@version) whose own source is downloaded and built as the main module (so that its
    # replace directives apply).
    module_dir: str | None = None
    install: str | None = None
    source: str | None = None
    ldflags: str = ""
    # Packages to build (their last path element names the binary); default ./cmd/<binary>.
    packages: tuple[str, ...] = ()
    tags: str = ""
    cgo: bool = False
    # For a `source` build: go.mod replacements ("old=new@version") applied to the copy, e.g.
    # where the module replaces a sibling module by a directory its zip does not hold.
    replace: tuple[str, ...] = ()

    @property
    def bin_dir(self) -> Path:
        return config.component_cache(self.name, self.version) / "bin"

    def paths(self) -> dict[str, Path]:
        return {b: self.bin_dir / b for b in self.binaries}


def _kube_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-s -w -X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major} "
        f"-X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean"
    )


KUBERNETES = Component(
    "kubernetes",
    config.KUBERNETES_VERSION,
    KUBE_BINARIES,
    module_dir="kubernetes",
    ldflags=_kube_ldflags(config.KUBERNETES_VERSION),
)
ETCD = Component("etcd", config.ETCD_VERSION, ETCD_BINARIES, module_dir="etcd", ldflags="-s -w")
MINIO = Component(
    "minio",
    config.MINIO_VERSION.rsplit("-", 1)[1],
    ("minio",),
    install=f"github.com/minio/minio@{config.MINIO_VERSION}",
    ldflags="-s -w",
)
FAKE_GCS = Component(
    "fake-gcs-server",
    config.FAKE_GCS_VERSION,
    ("fake-gcs-server",),
    install=f"github.com/fsouza/fake-gcs-server@{config.FAKE_GCS_VERSION}",
    ldflags="-s -w",
)
# The worker nodes' programs (see NODES.md). kubelet and kube-scheduler have their own
# wrapper module, so that the apiserver's cached build never changes because of them.
KUBE_NODE = Component(
    "kubernetes-node",
    config.KUBERNETES_VERSION,
    ("kubelet", "kube-scheduler"),
    module_dir="kubenode",
    ldflags=_kube_ldflags(config.KUBERNETES_VERSION),
)
CONTAINERD = Component(
    "containerd",
    config.CONTAINERD_VERSION,
    ("containerd", "ctr", "containerd-shim-runc-v2"),
    source=f"github.com/containerd/containerd/v2@{config.CONTAINERD_VERSION}",
    ldflags=f"-s -w -X github.com/containerd/containerd/v2/version.Version={config.CONTAINERD_VERSION}",
    tags="no_btrfs no_devmapper no_zfs",
)
RUNC = Component(
    "runc",
    config.RUNC_VERSION,
    ("runc",),
    source=f"github.com/opencontainers/runc@{config.RUNC_VERSION}",
    ldflags=f"-s -w -X main.version={config.RUNC_VERSION.lstrip('v')}",
    packages=(".",),
    tags="seccomp urfave_cli_no_docs",
    cgo=True,  # runc's nsenter is C; seccomp needs libseccomp-dev
)
CNI_PLUGINS = Component(
    "cni-plugins",
    config.CNI_PLUGINS_VERSION,
    ("bridge", "host-local", "loopback", "portmap"),
    source=f"github.com/containernetworking/plugins@{config.CNI_PLUGINS_VERSION}",
    ldflags="-s -w",
    packages=(
        "./plugins/main/bridge",
        "./plugins/ipam/host-local",
        "./plugins/main/loopback",
        "./plugins/meta/portmap",
    ),
)
LOCAL_PATH = Component(
    "local-path-provisioner",
    config.LOCAL_PATH_VERSION,
    ("local-path-provisioner",),
    source=f"github.com/rancher/local-path-provisioner@{config.LOCAL_PATH_VERSION}",
    ldflags="-s -w",
    packages=(".",),
)
# The programs packed into the clusters' images (pause, the demo app): our own module.
IMAGE_PROGRAMS = Component(
    "image-programs", "1", ("pause", "app"), module_dir="images", ldflags="-s -w"
)
NODE_COMPONENTS = (KUBE_NODE, CONTAINERD, RUNC, CNI_PLUGINS, LOCAL_PATH, IMAGE_PROGRAMS)
# The CSI driver (our own module) and the Kubernetes CSI sidecars around it (devenv/csi.py).
CSI_DRIVER = Component("csi-hostpath", "v0.1.0", ("csi-hostpath",), module_dir="csi-hostpath")
CSI_PROVISIONER = Component(
    "external-provisioner",
    config.CSI_PROVISIONER_VERSION,
    ("csi-provisioner",),
    source=f"github.com/kubernetes-csi/external-provisioner/v6@{config.CSI_PROVISIONER_VERSION}",
    ldflags=f"-s -w -X main.version={config.CSI_PROVISIONER_VERSION}",
)
SNAPSHOT_CLIENT_MODULE = "github.com/kubernetes-csi/external-snapshotter/client/v8"
CSI_SNAPSHOTTER = Component(
    "external-snapshotter",
    config.CSI_SNAPSHOTTER_VERSION,
    ("snapshot-controller", "csi-snapshotter"),
    source=f"github.com/kubernetes-csi/external-snapshotter/v8@{config.CSI_SNAPSHOTTER_VERSION}",
    ldflags=f"-s -w -X main.version={config.CSI_SNAPSHOTTER_VERSION}",
    # Its go.mod points the client module at ./client, which the module zip leaves out.
    replace=(
        f"{SNAPSHOT_CLIENT_MODULE}={SNAPSHOT_CLIENT_MODULE}@{config.CSI_SNAPSHOTTER_VERSION}",
    ),
)
CSI_COMPONENTS = (CSI_DRIVER, CSI_PROVISIONER, CSI_SNAPSHOTTER)
# The CSI conformance suite, run against the driver by tests/integration/test_csi.py only.
CSI_SANITY = Component(
    "csi-sanity",
    config.CSI_SANITY_VERSION,
    ("csi-sanity",),
    install=f"github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@{config.CSI_SANITY_VERSION}",
    ldflags="-s -w",
)
# Velero and its AWS object-store plugin (devenv/velero.py). `velero server` starts
# controller-runtime's metrics server on its default ":8080" (every interface) and has no flag
# for it: the default is linked as loopback with a port the kernel picks, so that any number
# of servers (cluster A, B, parallel test runs) never collide nor listen outside.
_VELERO_PKG = "github.com/vmware-tanzu/velero"
VELERO_CONTROLLER_METRICS = "127.0.0.1:0"
VELERO = Component(
    "velero",
    config.VELERO_VERSION,
    ("velero",),
    source=f"{_VELERO_PKG}@{config.VELERO_VERSION}",
    ldflags=(
        f"-s -w -X {_VELERO_PKG}/pkg/buildinfo.Version={config.VELERO_VERSION} "
        f"-X {_VELERO_PKG}/pkg/buildinfo.GitTreeState=clean "
        "-X sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress="
        + VELERO_CONTROLLER_METRICS
    ),
    replace=(f"k8s.io/cli-runtime=k8s.io/cli-runtime@{config.VELERO_CLI_RUNTIME}",),
)
VELERO_AWS_PLUGIN = Component(
    "velero-plugin-for-aws",
    config.VELERO_AWS_PLUGIN_VERSION,
    ("velero-plugin-for-aws",),
    source=f"github.com/vmware-tanzu/velero-plugin-for-aws@{config.VELERO_AWS_PLUGIN_VERSION}",
    ldflags="-s -w",
    packages=("./velero-plugin-for-aws",),
)
VELERO_COMPONENTS = (VELERO, VELERO_AWS_PLUGIN)
COMPONENTS = {
    c.name: c
    for c in (
        ETCD,
        MINIO,
        FAKE_GCS,
        KUBERNETES,
        *NODE_COMPONENTS,
        *CSI_COMPONENTS,
        CSI_SANITY,
        *VELERO_COMPONENTS,
    )
}


def go_binary() -> str | None:
    """The go command: $PALETTE_DEVENV_GO ("none" pretends there is none), PATH, or the
    default install location /usr/local/go/bin/go."""
    override = os.environ.get("PALETTE_DEVENV_GO")
    if override:
        return None if override == "none" else override
    found = shutil.which("go")
    if found:
        return found
    default = Path("/usr/local/go/bin/go")
    return str(default) if default.exists() else None


def go_env(cgo: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CGO_ENABLED="1" if cgo else "0", GOFLAGS="-mod=mod -buildvcs=false", GOTOOLCHAIN="local"
    )
    return env


def _go(
    args: list[str], cwd: Path, log: Path | None = None, env: dict | None = None, progress=print
) -> str:
    go = go_binary()
    if go is None:
        raise BuildError("Go is not installed")
    env = env or go_env()
    if log is None:
        proc = subprocess.run(
            [go, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise BuildError(f"go {' '.join(args)} failed:\n{proc.stderr.strip()}")
        return proc.stdout
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"$ go {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen([go, *args], cwd=cwd, env=env, stdout=out, stderr=out)
        started = time.monotonic()
        while True:
            try:
                proc.wait(timeout=60)
                break
            except subprocess.TimeoutExpired:
                progress(f"  ... still building ({(time.monotonic() - started) / 60:.0f} min)")
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BuildError(f"go {' '.join(args)} failed (full log: {log}):\n{tail}")
    return ""


def _inputs_hash(comp: Component) -> str:
    h = hashlib.sha256(f"{comp.name} {comp.version} {comp.install} {comp.ldflags}".encode())
    if comp.source or comp.packages or comp.tags or comp.cgo:
        h.update(f"{comp.source} {comp.packages} {comp.tags} {comp.cgo}".encode())
    if comp.replace:
        h.update(f"{comp.replace}".encode())
    if comp.module_dir:
        root = config.GO_DIR / comp.module_dir
        for path in sorted(root.rglob("*")):
            if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()


def is_built(comp: Component) -> bool:
    stamp = comp.bin_dir / ".stamp"
    if not stamp.exists() or stamp.read_text().strip() != _inputs_hash(comp):
        return False
    return all(p.exists() for p in comp.paths().values())


def build(comp: Component, log=print) -> float:
    """Build ``comp`` into its cache directory unless it is already there; return seconds spent."""
    if is_built(comp):
        return 0.0
    if go_binary() is None:
        raise BuildError("Go is not installed")
    start = time.monotonic()
    cache = config.component_cache(comp.name, comp.version)
    build_log = cache / "build.log"
    tmp_bin = cache / "bin.partial"
    shutil.rmtree(tmp_bin, ignore_errors=True)
    tmp_bin.mkdir(parents=True)
    build_log.write_text("")
    log(f"building {comp.name} {comp.version} (log: {build_log}) ...")
    if comp.module_dir or comp.source:
        if comp.source:
            mod = _writable_source(comp, cache, build_log, log)
            if comp.replace:
                _go(["mod", "edit", *(f"-replace={r}" for r in comp.replace)], mod)
        else:
            mod = config.GO_DIR / comp.module_dir
        if comp in (KUBERNETES, KUBE_NODE):
            if _required_version(mod, "k8s.io/kubernetes") != comp.version:
                log(f"  regenerating {mod}/go.mod for {comp.version}")
                generate_kubernetes_module(comp.version, module_dir=comp.module_dir)
        args = ["build", "-trimpath", "-ldflags", comp.ldflags, "-o", str(tmp_bin) + "/"]
        if comp.tags:
            args += ["-tags", comp.tags]
        _go(
            [*args, *(comp.packages or [f"./cmd/{b}" for b in comp.binaries])],
            cwd=mod,
            log=build_log,
            env=go_env(comp.cgo),
            progress=log,
        )
    else:
        env = go_env()
        env["GOBIN"] = str(tmp_bin)
        _go(
            ["install", "-trimpath", "-ldflags", comp.ldflags, comp.install],
            cwd=cache,
            log=build_log,
            env=env,
            progress=log,
        )
    shutil.rmtree(comp.bin_dir, ignore_errors=True)
    tmp_bin.rename(comp.bin_dir)
    (comp.bin_dir / ".stamp").write_text(_inputs_hash(comp) + "\n")
    took = time.monotonic() - start
    log(f"built {comp.name} {comp.version} in {took:.0f}s")
    return took


def _writable_source(comp: Component, cache: Path, build_log: Path, log) -> Path:
    """The module's source from the module cache, copied to ``cache/src`` (the module cache
    is read-only, and a build may write go.sum)."""
    with tempfile.TemporaryDirectory() as tmp:
        info = json.loads(_go(["mod", "download", "-json", comp.source], Path(tmp)))
    src = cache / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(info["Dir"], src)
    for path in [src, *src.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    log(f"  source of {comp.source} copied to {src}")
    return src


# --- wrapper modules --------------------------------------------------------------------


def _required_version(mod_dir: Path, module: str) -> str | None:
    gomod = mod_dir / "go.mod"
    if not gomod.exists():
        return None
    m = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(\S+)", gomod.read_text(), re.M)
    return m.group(1) if m else None


def staging_modules(kubernetes_gomod: str) -> list[str]:
    """The k8s.io staging modules that k8s.io/kubernetes pins at v0.0.0 or replaces locally."""
    names = set(re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*(?://.*)?$", kubernetes_gomod, re.M))
    names |= set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", kubernetes_gomod, re.M))
    return sorted(names)


KUBE_MODULE_PURPOSE = {
    "kubernetes": "kube-apiserver, kube-controller-manager and kubectl",
    "kubenode": "the worker-node programs: kubelet and kube-scheduler",
}


def generate_kubernetes_module(
    version: str = config.KUBERNETES_VERSION, log=print, module_dir: str = "kubernetes"
) -> Path:
    """Write devenv/go/<module_dir>/go.mod from the released kubernetes go.mod, then tidy it.

    Every staging module is replaced by its published release (``v1.36.3`` -> ``v0.36.3``).
    """
    mod_dir = config.GO_DIR / module_dir
    with tempfile.TemporaryDirectory() as tmp:
        info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], tmp))
    upstream = Path(info["GoMod"]).read_text()
    staging = staging_modules(upstream)
    staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
    go_line = re.search(r"^go (\S+)", upstream, re.M).group(1)
    godebug = re.findall(r"^godebug .*$", upstream, re.M)
    lines = [
        f"// Wrapper module that builds {KUBE_MODULE_PURPOSE[module_dir]}.",
        "// Generated by `python -m devenv gomod` from the go.mod of k8s.io/kubernetes",
        f"// {version}: each staging module it pins at v0.0.0 is replaced by its release.",
        f"module palette.local/devenv/{module_dir}",
        "",
        f"go {go_line}",
        "",
        *godebug,
        "",
        f"require k8s.io/kubernetes {version}",
        "",
        "replace (",
        *(f"\t{m} => {m} {staging_version}" for m in staging),
        ")",
        "",
    ]
    (mod_dir / "go.mod").write_text("\n".join(lines))
    (mod_dir / "go.sum").unlink(missing_ok=True)
    log(f"{len(staging)} staging modules replaced by {staging_version}; running go mod tidy")
    _go(["mod", "tidy"], mod_dir)
    return mod_dir / "go.mod"


def generate_etcd_module(version: str = config.ETCD_VERSION, log=print) -> Path:
    mod_dir = config.GO_DIR / "etcd"
    mods = ("server", "etcdctl", "etcdutl")
    lines = [
        "// Wrapper module that builds etcd, etcdctl and etcdutl (their own go.mod files carry",
        "// replace directives, so `go install` refuses them). Regenerate: python -m devenv gomod",
        "module palette.local/devenv/etcd",
        "",
        "go 1.26.0",
        "",
        "require (",
        *(f"\tgo.etcd.io/etcd/{m}/v3 {version}" for m in mods),
        ")",
        "",
    ]
    (mod_dir / "go.mod").write_text("\n".join(lines))
    (mod_dir / "go.sum").unlink(missing_ok=True)
    log(f"etcd {version}: running go mod tidy")
    _go(["mod", "tidy"], mod_dir)
    return mod_dir / "go.mod"
