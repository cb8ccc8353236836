"""The mover: a short-lived pod that mounts one claim, and the byte streams through it.

``Mover.start`` creates the pod and waits (bounded) until it runs, with the reason when
it does not (image missing, unschedulable, volume not mounted). ``copy_out`` runs the
tar in it and writes every stdout byte into the store's writer while hashing it (on a
second thread: ``pipeline.WriteBehind``); ``copy_in`` sends a stored copy to the tar in
it (read ahead on a second thread), checking its sha256 against the one recorded at
backup time. Both compare their byte count with the one the mover's ``dd`` reports
(``objects.dd_agrees``). ``remove`` deletes the pod (the job's cleanup does it again if
this run dies first).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from backups.engine.kube.exec import ExecError, ExecResult, exec_command
from backups.engine.volumes.cluster import Objects, WaitTimeout, core_path, wait_for
from backups.engine.volumes.nodeloss import PROBE_TIMEOUT, node_lost
from backups.engine.volumes.objects import (
    BACKUP_SCRIPT,
    BLOCK,
    MOVER_CONTAINER,
    RESTORE_SCRIPT,
    SIZE_COMMAND,
    dd_agrees,
    mover_pod,
    without_records,
)
from backups.engine.volumes.pipeline import WriteBehind, read_ahead

READ_CHUNK = BLOCK


class MoveFailed(Exception):
    """The copy of one volume failed; ``str()`` is the volume's reason."""


@dataclass(frozen=True)
class MoverSettings:
    image: str
    start_timeout: float  # seconds for the pod to run
    idle_timeout: float  # seconds without a frame before the stream counts as dead
    deadline: int  # the pod's activeDeadlineSeconds


def _pod_state(pod: dict | None) -> tuple[bool, str]:
    if pod is None:
        return False, "the pod is gone"
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    if phase in ("Failed", "Succeeded"):
        raise MoveFailed(f"the mover pod ended ({phase}: {status.get('reason') or 'no reason'})")
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            reason = waiting.get("reason", "")
            if reason in (
                "ErrImagePull",
                "ImagePullBackOff",
                "ErrImageNeverPull",
                "InvalidImageName",
            ):
                raise MoveFailed(
                    f"the mover image cannot be pulled ({reason}: {waiting.get('message', '')})"
                )
            return False, f"container waiting: {reason}"
        if (cs.get("state") or {}).get("running"):
            return True, "running"
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("message"):
            return False, condition["message"]
    return False, phase


class Mover:
    def __init__(self, objects: Objects, settings: MoverSettings, should_stop):
        self.objects = objects
        self.settings = settings
        self.should_stop = should_stop
        self.namespace = self.name = ""

    def start(self, namespace: str, claim: str, *, operation: str, read_only: bool, node=""):
        body = mover_pod(
            namespace, claim, operation=operation, image=self.settings.image,
            read_only=read_only, deadline=self.settings.deadline, node=node,
        )  # fmt: skip
        created = self.objects.create(core_path(namespace, "pods"), body)
        self.namespace, self.name = namespace, created["metadata"]["name"]
        path = core_path(namespace, "pods", self.name)
        try:
            wait_for(
                f"The mover pod {namespace}/{self.name}",
                lambda: _pod_state(self.objects.find(path)),
                self.settings.start_timeout,
                self.should_stop,
                self._stopped,
            )
        except WaitTimeout as exc:
            raise MoveFailed(str(exc)) from None

    def _stopped(self):
        raise MoveFailed("stopped (the job was cancelled)")

    def _exec(self, command, **kwargs):
        try:
            return exec_command(
                self.objects.kube, self.namespace, self.name, MOVER_CONTAINER, command,
                timeout=self.settings.idle_timeout, should_stop=self.should_stop, **kwargs,
            )  # fmt: skip
        except ExecError as exc:
            raise MoveFailed(self._explain(str(exc))) from None

    def _explain(self, text: str) -> str:
        """Add what became of the pod when a stream broke (killed, evicted, gone), or
        lead with the node when the node under it was lost."""
        try:
            pod = self.objects.find(core_path(self.namespace, "pods", self.name))
        except Exception:  # noqa: BLE001 (the cluster may be gone too: say what we know)
            return text
        where = f"{self.namespace}/{self.name}"
        if pod is None:
            return f"{text} The mover pod {where} was deleted."
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Failed", "Succeeded"):
            return f"{text} The mover pod {where} ended ({phase})."
        lost = self._node_lost((pod.get("spec") or {}).get("nodeName", ""))
        if lost:
            return f"{lost} The stream said: {text}"
        if pod.get("metadata", {}).get("deletionTimestamp"):
            return f"{text} The mover pod {where} was being deleted."
        return text

    def _node_lost(self, node: str) -> str:
        def probe() -> ExecResult:
            return exec_command(
                self.objects.kube, self.namespace, self.name, MOVER_CONTAINER, ["true"],
                timeout=min(self.settings.idle_timeout, PROBE_TIMEOUT),
            )  # fmt: skip

        return node_lost(lambda name: self.objects.find(f"/api/v1/nodes/{name}"), probe, node)

    def used_bytes(self) -> int:
        out = bytearray()
        result = self._exec(SIZE_COMMAND, on_stdout=out.extend)
        if not result.ok:
            return 0
        try:
            return int(out.split()[0]) * 1024
        except (IndexError, ValueError):
            return 0

    def _tar(self, result: ExecResult, direction: str, size: int) -> str:
        """Why the mover's side failed, or "" when it ended well and its dd counted
        ``size`` bytes too."""
        shown = replace(result, stderr=without_records(result.stderr))
        if not result.ok:
            failed = f"tar in the mover failed ({shown.describe()})"
            # -1: the API server ended the command, not tar (its node, its container).
            return self._explain(failed) if result.exit_code == -1 else failed
        if not dd_agrees(result.stderr, direction, size):
            counts = " / ".join(result.stderr.strip().splitlines()[-2:]) or "no count"
            what = "sent" if direction == "out" else "received"
            return (
                f"the copy arrived incomplete: {size} bytes here, the mover {what} "
                f"another amount ({counts}, blocks of {BLOCK} bytes)"
            )
        return ""

    def copy_out(self, writer, progress: Callable[[int], None]) -> tuple[int, str]:
        """Stream the claim's tar into ``writer``; (bytes, sha256) once both ends agree."""
        behind = WriteBehind(writer, name=f"copy-writer-{self.name}")
        last = [0.0]

        def take(data: bytes) -> None:
            behind.write(data)
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                progress(behind.size)

        try:
            result = self._exec(["sh", "-c", BACKUP_SCRIPT], on_stdout=take)
        except BaseException:
            behind.abandon()
            raise
        failed = self._tar(result, "out", behind.size)
        if failed:
            behind.abandon()
            raise MoveFailed(failed)
        behind.close()
        progress(behind.size)
        return behind.size, behind.digest.hexdigest()

    def copy_in(self, stream, expected_sha256: str, progress: Callable[[int], None]) -> int:
        """Send ``stream`` (a stored copy) to the tar in the mover; raise MoveFailed when
        its sha256 differs from the one recorded at backup time, or the mover did not
        receive every byte.

        The copy is read (and hashed) ahead on a thread of its own and sent from the
        exec's stdin thread, which only counts: ``progress`` (the job's, which writes
        rows) is called from ``on_wait``, on the job's own thread."""
        digest = hashlib.sha256()
        done = [0]

        def read(size: int) -> bytes:
            data = stream.read(size)
            digest.update(data)
            return data

        blocks = read_ahead(read, name=f"copy-reader-{self.name}")

        def chunks() -> Iterator[bytes]:
            for data in blocks:
                done[0] += len(data)
                yield data

        reported = [0, 0.0]  # bytes, when

        def report() -> None:
            now = time.monotonic()
            if done[0] != reported[0] and now - reported[1] >= 0.5:
                reported[:] = [done[0], now]
                progress(done[0])

        try:
            result = self._exec(["sh", "-c", RESTORE_SCRIPT], stdin=chunks(), on_wait=report)
            progress(done[0])
            failed = self._tar(result, "in", done[0])
            if failed:
                # Was it the copy? Hash the rest of it: a damaged copy is the better reason.
                for _rest in blocks:
                    pass
                if expected_sha256 and digest.hexdigest() != expected_sha256:
                    raise MoveFailed(
                        f"the stored copy is damaged: its sha256 is {digest.hexdigest()}, "
                        f"the backup recorded {expected_sha256} ({failed})"
                    )
                raise MoveFailed(failed)
        finally:
            blocks.close()
        mine = digest.hexdigest()
        if expected_sha256 and mine != expected_sha256:
            raise MoveFailed(
                f"the stored copy is damaged: its sha256 is {mine}, the backup recorded "
                f"{expected_sha256}"
            )
        return done[0]

    def remove(self) -> None:
        if self.name:
            self.objects.delete(core_path(self.namespace, "pods", self.name))
            self.name = ""
