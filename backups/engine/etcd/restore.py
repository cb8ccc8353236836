"""The runbook carried out by the console, where it can act on the etcd host itself.

That is a control plane whose etcd, kube-apiserver and kube-controller-manager
run as local processes, listed by the server's settings (``local.py``; in
development, devenv's clusters A and B). For any other cluster the console prints
the runbook.

``restore_locally(request, log=, should_stop=)`` runs the runbook's steps, by the
same keys and titles, logging each one:

1. download the object into a work directory beside the data directory;
2. verify: the recorded sha256, etcd's own checksum, ``etcdutl snapshot status``;
3. stop the controller manager and the API server;
4. stop etcd;
5. ``etcdutl snapshot restore --bump-revision 1000000 --mark-compacted`` into a
   new directory (``etcd.restoring``);
6. swap it in (the old data becomes ``etcd.before-restore``) and start etcd;
7. start the API server and the controller manager;
8. check: the API server answers /readyz and etcd its Status.

The cluster is left running whatever fails: before the swap, the components
start again on the untouched data; after it, a failure to start puts the old
data directory back (the restored one is kept as ``etcd.failed-restore``) and
starts everything on it. One restore per cluster at a time (a file lock).
``should_stop()`` is asked before each step up to stopping the API server; from
there on the restore goes to the end (or rolls back), never half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from backups.engine.etcd.client import EtcdError, check_cluster_id, connect, tls_of
from backups.engine.etcd.local import COMPONENTS, Control, RestoreResult, StepFailed, StepResult
from backups.engine.etcd.runbook import (
    BUMP_REVISION,
    CHECK,
    DOWNLOAD,
    RESTORE,
    START_APISERVERS,
    START_ETCD,
    STOP_APISERVERS,
    STOP_ETCD,
    TITLES,
    VERIFY,
)
from backups.engine.etcd.verify import Downloaded, VerifyError, VerifyResult, check_file, download
from backups.engine.inputs import EtcdRestoreRequest
from backups.engine.job import Cancelled, ShouldStop, never
from backups.engine.storage.base import StorageError

logger = logging.getLogger(__name__)

ETCDUTL_RESTORE_TIMEOUT = 900  # seconds
READY_TIMEOUT = 90.0  # seconds for /readyz after the API server started
LOCAL_STEPS = (
    DOWNLOAD,
    VERIFY,
    STOP_APISERVERS,
    STOP_ETCD,
    RESTORE,
    START_ETCD,
    START_APISERVERS,
    CHECK,
)


def restore_locally(
    request: EtcdRestoreRequest,
    *,
    log: Callable[[str], None],
    should_stop: ShouldStop = never,
) -> RestoreResult:
    """Restore the cluster of ``request`` from its snapshot, step by step; never raises
    for a failed step."""
    if request.target is None:
        return RestoreResult(
            ok=False,
            error=f"The console cannot reach the etcd host of {request.etcd.cluster_name}: "
            "follow the runbook on the members.",
        )
    if not request.sha256:
        return RestoreResult(
            ok=False,
            error=f"Snapshot {request.snapshot_name} did not complete: it cannot be restored.",
        )
    return _LocalRestore(request, log, should_stop).run()


class _LocalRestore:
    def __init__(self, request: EtcdRestoreRequest, log, should_stop: ShouldStop):
        self.request = request
        self.provider = request.store.provider
        self.t = target = request.target
        self.control = Control(target, log=self._sublog)
        self._log = log
        self.should_stop = should_stop
        self.result = RestoreResult(ok=False, data_dir=str(target.data_dir))
        parent = target.data_dir.parent
        self.staging = parent / f"{target.data_dir.name}.restoring"
        self.previous = parent / f"{target.data_dir.name}.before-restore"
        self.failed = parent / f"{target.data_dir.name}.failed-restore"
        self.workdir: Path | None = None
        self.downloaded: Downloaded | None = None
        self.stopped = False  # some component was stopped by us
        self.swapped = False  # the restored data is in place
        self.down_since: float | None = None

    def log(self, text: str) -> None:
        self._log(text)

    # --- driver ------------------------------------------------------------------------

    def run(self) -> RestoreResult:
        started = time.monotonic()
        result = self.result
        actions = {
            DOWNLOAD: self._download,
            VERIFY: self._verify,
            STOP_APISERVERS: self._stop_apiservers,
            STOP_ETCD: self._stop_etcd,
            RESTORE: self._restore,
            START_ETCD: self._start_etcd,
            START_APISERVERS: self._start_apiservers,
            CHECK: self._check,
        }
        self.log(
            f"Restoring the etcd of {self.request.etcd.cluster_name} (local cluster "
            f"{self.t.name}) from snapshot {self.request.snapshot_name}"
        )
        try:
            with self._lock():
                try:
                    for number, key in enumerate(LOCAL_STEPS, 1):
                        if not self.stopped and self.should_stop():
                            raise Cancelled
                        self._step(number, key, actions[key])
                    result.ok = True
                except StepFailed as err:
                    result.error = str(err)
                except Cancelled:
                    result.cancelled = True
                    result.error = "Cancelled before the cluster was stopped: nothing changed."
                finally:
                    if self.stopped and not result.ok:
                        self._ensure_running()
                    elif not self.stopped:
                        result.cluster_running = True  # nothing was stopped
                    if self.workdir:
                        shutil.rmtree(self.workdir, ignore_errors=True)
        except StepFailed as err:  # the lock
            result.error = str(err)
        result.duration_seconds = time.monotonic() - started
        if result.ok:
            self.log(
                f"Restored in {result.duration_seconds:.1f} s; the API server was down for "
                f"{result.downtime_seconds:.1f} s. The previous data is kept in "
                f"{result.previous_data_dir}."
            )
        else:
            state = "running" if result.cluster_running else "NOT running"
            self.log(f"Restore failed: {result.error} The cluster is {state}.")
        return result

    def _step(self, number: int, key: str, action: Callable[[], str]) -> None:
        title = TITLES[key]
        self.log(f"[{number}/{len(LOCAL_STEPS)}] {title}")
        started = time.monotonic()
        try:
            detail = action() or ""
        except StepFailed as err:
            seconds = time.monotonic() - started
            self.result.steps.append(StepResult(key, title, False, seconds, str(err)))
            self.log(f"    failed after {seconds:.1f} s: {err}")
            raise
        except Exception as err:
            logger.exception("local etcd restore: step %s failed", key)
            seconds = time.monotonic() - started
            message = f"{title}: {err.__class__.__name__}: {err}"
            self.result.steps.append(StepResult(key, title, False, seconds, message))
            self.log(f"    failed after {seconds:.1f} s: {message}")
            raise StepFailed(message) from err
        seconds = time.monotonic() - started
        self.result.steps.append(StepResult(key, title, True, seconds, detail))
        self.log(f"    done in {seconds:.1f} s" + (f": {detail}" if detail else ""))

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        path = self.t.data_dir.parent / "etcd-restore.lock"
        with path.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise StepFailed(
                    f"Another restore of {self.request.etcd.cluster_name}'s etcd is running."
                ) from err
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- the steps ---------------------------------------------------------------------

    def _download(self) -> str:
        key = self.request.object_key
        self.workdir = Path(tempfile.mkdtemp(prefix="etcd-restore-", dir=self.t.data_dir.parent))
        target = self.workdir / f"{self.request.snapshot_name}.db"
        try:
            self.downloaded = download(self.provider, key, target)
        except StorageError as err:
            raise StepFailed(f"Could not download {key}: {err}") from err
        d = self.downloaded
        return f"{key}, {d.size_bytes} bytes in {d.seconds:.1f} s"

    def _verify(self) -> str:
        result = VerifyResult(ok=False)
        try:
            check_file(self.downloaded, self.request.sha256, self.t.etcdutl, result)
        except VerifyError as err:
            raise StepFailed(str(err)) from err
        self.result.revision = result.revision
        self._check_cluster_id()
        return (
            f"sha256 {result.sha256} matches; etcd's checksum "
            f"{'matches' if result.embedded_checksum_ok else 'is absent'}; revision "
            f"{result.revision}, {result.total_keys} keys"
        )

    def _check_cluster_id(self) -> None:
        """Refuse an etcd of another cluster than the recorded one (when it answers: a
        stopped etcd may be what the restore is for)."""
        etcd = self.request.etcd
        try:
            client, status = connect(etcd.endpoint, tls_of(etcd))
        except EtcdError:
            return
        client.close()
        try:
            check_cluster_id(status, etcd)
        except EtcdError as err:
            raise StepFailed(str(err)) from None

    def _stop_apiservers(self) -> str:
        self.stopped = True
        self.down_since = time.monotonic()
        stopped = [
            component
            for component in ("kube-controller-manager", "kube-apiserver")
            if self.control.stop(component)
        ]
        return "stopped " + (", ".join(stopped) if stopped else "nothing (they were not running)")

    def _stop_etcd(self) -> str:
        was_running = self.control.stop("etcd")
        return "stopped etcd" if was_running else "etcd was not running"

    def _restore(self) -> str:
        shutil.rmtree(self.staging, ignore_errors=True)
        argv = [
            self.t.etcdutl,
            "snapshot",
            "restore",
            str(self.downloaded.path),
            f"--data-dir={self.staging}",
            f"--name={self.t.member_name}",
            f"--initial-cluster={self.t.initial_cluster}",
            f"--initial-advertise-peer-urls={self.t.peer_url}",
            f"--bump-revision={BUMP_REVISION}",
            "--mark-compacted",
        ]
        self.log("    $ " + " ".join(argv))
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=ETCDUTL_RESTORE_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise StepFailed(
                f"etcdutl snapshot restore did not finish within {ETCDUTL_RESTORE_TIMEOUT} s."
            ) from err
        if proc.returncode != 0:
            shutil.rmtree(self.staging, ignore_errors=True)
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise StepFailed(
                "etcdutl snapshot restore failed: " + (lines[-1] if lines else "no output")
            )
        return f"restored into {self.staging}"

    def _start_etcd(self) -> str:
        data = self.t.data_dir
        shutil.rmtree(self.previous, ignore_errors=True)
        if data.exists():
            data.rename(self.previous)
            self.result.previous_data_dir = str(self.previous)
        self.staging.rename(data)
        self.swapped = True
        self.log(f"    {data} -> {self.previous.name}; {self.staging.name} -> {data.name}")
        try:
            self.control.start("etcd")
        except Exception as err:
            self._swap_back()
            raise StepFailed(
                f"etcd did not start on the restored data ({_first_line(err)}); the previous "
                "data was put back."
            ) from err
        return "etcd runs on the restored data"

    def _start_apiservers(self) -> str:
        try:
            for component in ("kube-apiserver", "kube-controller-manager"):
                self.control.start(component)
        except Exception as err:
            self._swap_back()
            raise StepFailed(
                f"The API server did not start on the restored etcd ({_first_line(err)}); the "
                "previous data was put back."
            ) from err
        return "kube-apiserver and kube-controller-manager started"

    def _check(self) -> str:
        if not self._wait_ready():
            self._swap_back()
            raise StepFailed(
                f"The API server did not answer /readyz within {READY_TIMEOUT:.0f} s on the "
                "restored etcd; the previous data was put back."
            )
        self.result.cluster_running = True
        self.result.downtime_seconds = time.monotonic() - (self.down_since or time.monotonic())
        detail = "the API server answers /readyz"
        try:
            etcd = self.request.etcd
            client, status = connect(etcd.endpoint, tls_of(etcd))
            client.close()
            check_cluster_id(status, etcd)
            self.result.revision_after = status.revision
            detail += f"; etcd answers at revision {status.revision}"
        except EtcdError as err:
            detail += f"; etcd Status failed: {err}"
        return detail

    # --- keeping the cluster running ---------------------------------------------------

    def _sublog(self, text: str) -> None:
        self.log(f"    {text.strip()}")

    def _wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.control.ready("kube-apiserver"):
                return True
            time.sleep(0.25)
        return False

    def _swap_back(self) -> None:
        """Put the data from before the restore back in place (etcd stopped first)."""
        if not self.swapped or not self.previous.exists():
            return
        self.log("    putting the previous etcd data back")
        for component in reversed(COMPONENTS):
            self.control.stop(component)
        shutil.rmtree(self.failed, ignore_errors=True)
        self.t.data_dir.rename(self.failed)
        self.previous.rename(self.t.data_dir)
        self.swapped = False
        self.result.rolled_back = True
        self.result.previous_data_dir = ""
        self.log(f"    the restored data is kept in {self.failed} for inspection")

    def _ensure_running(self) -> None:
        """Start whatever is not running, in order, on whatever data is in place."""
        where = "restored" if self.swapped else "previous"
        self.log(f"Starting whatever is stopped again, on the {where} etcd data")
        problems = []
        for component in COMPONENTS:
            try:
                self.control.start(component)
            except Exception as err:
                problems.append(f"{component}: {_first_line(err)}")
        ready = not problems and self._wait_ready()
        if ready and not self.result.cluster_running:
            self.result.downtime_seconds = time.monotonic() - (self.down_since or time.monotonic())
        self.result.cluster_running = ready
        if problems:
            self.log("    could not start: " + "; ".join(problems))
            self.result.error += " Starting the cluster again failed: " + "; ".join(problems)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else err.__class__.__name__
