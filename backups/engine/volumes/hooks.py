"""Velero's hook annotations on pods, and running them over exec.

Backup: ``pre.hook.backup.velero.io/{container,command,on-error,timeout}`` runs before
the pod's volumes are captured, ``post.hook.backup.velero.io/...`` after; as Velero does,
for every pod in the backup, whether it has volumes or not. Restore:
``post.hook.restore.velero.io/{container,command,on-error,exec-timeout,wait-timeout}``
once the restored pod runs, and ``init.hook.restore.velero.io/{container-image,
container-name,command}`` as an init container added to the restored pod.

Defaults are Velero's: on-error Fail, timeout 30 s, the first container; the command is
a JSON array (a plain string is one argument), run without a shell. Each run becomes a
``HookReport`` with its exit code and the tail of its output.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from backups.engine.kube.exec import ExecError, exec_command

PRE_BACKUP, POST_BACKUP = "pre.hook.backup.velero.io", "post.hook.backup.velero.io"
POST_RESTORE, INIT_RESTORE = "post.hook.restore.velero.io", "init.hook.restore.velero.io"
OUTPUT_KEPT = 2000
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Hook:
    phase: str  # pre-backup | post-backup | post-restore
    container: str
    command: tuple[str, ...]
    fail_on_error: bool
    timeout: float
    wait_timeout: float = 0.0  # post-restore: how long to wait for the container to run


@dataclass
class HookReport:
    namespace: str
    pod: str
    container: str
    phase: str
    command: str
    exit_code: int | None  # None: it could not run (timeout, no container)
    output: str
    ok: bool
    fail_on_error: bool


def parse_duration(text: str, default: float) -> float:
    """Seconds of a Go duration (``30s``, ``1m30s``, ``500ms``) or plain seconds."""
    text = (text or "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"([0-9.]+)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return sum(float(n) * units[u] for n, u in parts)


def parse_command(raw: str) -> tuple[str, ...]:
    raw = (raw or "").strip()
    if raw.startswith("["):
        try:
            value = json.loads(raw)
        except ValueError:
            return (raw,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    return (raw,) if raw else ()


def _first_container(pod: dict) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return containers[0].get("name", "")


def pod_hook(pod: dict, prefix: str) -> Hook | None:
    """The hook of kind ``prefix`` that ``pod``'s annotations ask for, or None."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    command = parse_command(annotations.get(f"{prefix}/command", ""))
    if not command:
        return None
    timeout_key = "exec-timeout" if prefix == POST_RESTORE else "timeout"
    phase = {PRE_BACKUP: "pre-backup", POST_BACKUP: "post-backup", POST_RESTORE: "post-restore"}
    return Hook(
        phase=phase[prefix],
        container=annotations.get(f"{prefix}/container") or _first_container(pod),
        command=command,
        fail_on_error=annotations.get(f"{prefix}/on-error", "Fail").lower() != "continue",
        timeout=parse_duration(annotations.get(f"{prefix}/{timeout_key}", ""), DEFAULT_TIMEOUT),
        wait_timeout=parse_duration(annotations.get(f"{prefix}/wait-timeout", ""), 0.0),
    )


def init_container(pod: dict) -> dict | None:
    """The init container ``init.hook.restore.velero.io/*`` asks for, or None."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    image = annotations.get(f"{INIT_RESTORE}/container-image", "")
    command = parse_command(annotations.get(f"{INIT_RESTORE}/command", ""))
    if not image or not command:
        return None
    mounts = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        mounts.extend(container.get("volumeMounts") or [])
    seen, unique = set(), []
    for mount in mounts:
        key = (mount.get("name"), mount.get("mountPath"))
        if key not in seen:
            seen.add(key)
            unique.append(mount)
    return {
        "name": annotations.get(f"{INIT_RESTORE}/container-name") or "restore-hook",
        "image": image,
        "command": list(command),
        "volumeMounts": unique,
    }


def run_hook(kube, pod: dict, hook: Hook, should_stop=lambda: False) -> HookReport:
    meta = pod.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    output = bytearray()
    end = time.monotonic() + hook.timeout

    def keep(data: bytes) -> None:
        output.extend(data)
        if len(output) > 2 * OUTPUT_KEPT:
            del output[:-OUTPUT_KEPT]

    def stop() -> bool:
        return time.monotonic() > end or should_stop()

    report = HookReport(
        namespace, name, hook.container, hook.phase, json.dumps(list(hook.command)), None, "",
        False, hook.fail_on_error,
    )  # fmt: skip
    try:
        result = exec_command(
            kube, namespace, name, hook.container, list(hook.command),
            on_stdout=keep, timeout=hook.timeout, should_stop=stop,
        )  # fmt: skip
    except ExecError as exc:
        timed_out = time.monotonic() > end
        report.output = f"timed out after {hook.timeout:g} seconds" if timed_out else str(exc)
        return report
    text = bytes(output).decode("utf-8", "replace") + result.stderr
    report.exit_code = result.exit_code
    report.output = (text if result.exit_code != -1 else f"{result.message}\n{text}")[-OUTPUT_KEPT:]
    report.ok = result.exit_code == 0
    return report


def describe(report: HookReport) -> str:
    status = (
        "timed out or could not run" if report.exit_code is None else f"exit {report.exit_code}"
    )
    tail = report.output.strip().splitlines()[-1:] if report.output.strip() else []
    return (
        f"{report.phase} hook {report.command} in {report.namespace}/{report.pod} "
        f"({report.container}): {status}" + (f": {tail[0][:200]}" if tail else "")
    )
