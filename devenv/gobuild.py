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
    # Either a wrapper module under devenv/go/<module_dir> or a `go install` target.
    module_dir: str | None = None
    install: str | None = None
    ldflags: str = ""

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
COMPONENTS = {c.name: c for c in (ETCD, MINIO, FAKE_GCS, KUBERNETES)}


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


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOFLAGS="-mod=mod -buildvcs=false", GOTOOLCHAIN="local")
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
    if comp.module_dir:
        mod = config.GO_DIR / comp.module_dir
        if comp is KUBERNETES and _required_version(mod, "k8s.io/kubernetes") != comp.version:
            log(f"  regenerating {mod}/go.mod for {comp.version}")
            generate_kubernetes_module(comp.version)
        args = ["build", "-trimpath", "-ldflags", comp.ldflags, "-o", str(tmp_bin) + "/"]
        _go(
            [*args, *(f"./cmd/{b}" for b in comp.binaries)],
            cwd=mod,
            log=build_log,
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


def generate_kubernetes_module(version: str = config.KUBERNETES_VERSION, log=print) -> Path:
    """Write devenv/go/kubernetes/go.mod from the released kubernetes go.mod, then tidy it.

    Every staging module is replaced by its published release (``v1.36.3`` -> ``v0.36.3``).
    """
    mod_dir = config.GO_DIR / "kubernetes"
    with tempfile.TemporaryDirectory() as tmp:
        info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], tmp))
    upstream = Path(info["GoMod"]).read_text()
    staging = staging_modules(upstream)
    staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
    go_line = re.search(r"^go (\S+)", upstream, re.M).group(1)
    godebug = re.findall(r"^godebug .*$", upstream, re.M)
    lines = [
        "// Wrapper module that builds kube-apiserver, kube-controller-manager and kubectl.",
        "// Generated by `python -m devenv gomod` from the go.mod of k8s.io/kubernetes",
        f"// {version}: each staging module it pins at v0.0.0 is replaced by its release.",
        "module palette.local/devenv/kubernetes",
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
