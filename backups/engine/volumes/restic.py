"""Running restic for volume copies: one repository per location and namespace.

restic (``/usr/bin/restic``, 0.14) reaches its repository only through the job's REST
server (``restic_rest.py``); the repository's URL (with the server's token) and its
password go to restic in its environment, never on its command line, and are taken
out of anything restic writes before that becomes a reason.

- ``Repository.backup(filename, tag)``: a ``Writer`` whose bytes are restic's stdin
  (``restic backup --stdin``); ``close()`` waits for restic and keeps the snapshot id
  and ``data_added`` (what this backup really stored); ``abort()`` kills restic, which
  then writes no snapshot (its packs go at the next prune).
- ``Repository.dump(snapshot, filename)``: a readable stream of the stored bytes.
- ``Repository.forget(ids)`` and ``prune()`` (only when the repository's lock is free:
  another job holding it leaves the prune to a later one, the next delete or discard
  in that repository).

When the store fails under restic, the server keeps the failure and restic is stopped
at once with it as the reason (restic itself would retry for many minutes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading

from backups.engine.storage.base import StorageError, Writer
from backups.engine.volumes.restic_rest import ResticServer, object_key

BINARY = "restic"
WATCH = 0.2  # seconds between looks at the server's failure while restic runs
REASON_CHARS = 600
DAMAGE = "ciphertext verification failed"  # restic's words for a pack that does not open


class ResticError(StorageError):
    """restic failed; ``str()`` is its reason without the password or the token."""

    reason = "restic"


def restic_binary() -> str | None:
    """restic's path, or None when it is not installed (copies are then tar files)."""
    return shutil.which(BINARY)


class Repository:
    """One namespace's repository in one location, through ``server``."""

    def __init__(self, server: ResticServer, namespace: str, password: str,
                 binary: str | None = None):  # fmt: skip
        self.server = server
        self.namespace = namespace
        self.password = password
        self.binary = binary or restic_binary()
        if not self.binary:
            raise ResticError("restic is not installed on this worker (the Debian package).")

    @property
    def where(self) -> str:
        return f"{self.server.root}/{self.namespace}/"

    # The process ------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
        env.update(
            RESTIC_REPOSITORY=self.server.url(self.namespace),
            RESTIC_PASSWORD=self.password,
            RESTIC_PROGRESS_FPS="0.5",
        )
        return env

    def _start(self, args: list[str], *, stdin=subprocess.DEVNULL) -> _Process:
        command = [self.binary, "--no-cache", *args]
        self.server.reset()
        proc = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self._environment(), start_new_session=True,
        )  # fmt: skip
        return _Process(proc, self)

    def clean(self, text: str) -> str:
        """``text`` without the password, the token or the repository's URL."""
        for secret in (self.server.url(self.namespace), self.password, self.server.token):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _run(self, args: list[str], what: str) -> bytes:
        return self._start(args).finish(what)

    # Commands ---------------------------------------------------------------------

    def exists(self) -> bool:
        return self.server.provider.exists(object_key(self.server.root, self.namespace,
                                                      "config", ""))  # fmt: skip

    def ensure(self) -> None:
        """The repository exists (made on first use)."""
        if self.exists():
            return
        try:
            self._run(["init"], "creating the restic repository")
        except ResticError:
            if not self.exists():  # else another job made it at the same moment
                raise

    def backup(self, filename: str, tags: list[str]) -> BackupWriter:
        self.ensure()
        args = ["backup", "--stdin", "--stdin-filename", filename, "--host", "palette", "--json"]
        for tag in tags:
            args += ["--tag", tag]
        return BackupWriter(self._start(args, stdin=subprocess.PIPE))

    def dump(self, snapshot: str, filename: str) -> DumpReader:
        return DumpReader(self._start(["dump", snapshot, f"/{filename}"]))

    def snapshots(self, tag: str = "") -> list[dict]:
        if not self.exists():
            return []
        args = ["snapshots", "--json"] + (["--tag", tag] if tag else [])
        return json.loads(self._run(args, "listing the restic snapshots") or b"[]") or []

    def forget(self, ids: list[str]) -> int:
        """Remove these snapshots (full or short ids); how many went.

        This is what ``restic forget <ids>`` does (delete the snapshot files), done here
        because restic 0.14's forget wants the repository's exclusive lock, which a
        backup of the namespace running elsewhere holds shared: removing a snapshot
        file never harms a backup, and a prune that runs at the same moment only keeps
        a little more than it could have."""
        folder = f"{self.server.root}/{self.namespace}/snapshots/"
        names = self._snapshot_names()
        removed = 0
        for short in {i for i in ids if i}:
            matches = [name for name in names if name.startswith(short)]
            if len(matches) == 1:
                self.server.provider.delete(folder + matches[0])
                removed += 1
        return removed

    def _snapshot_names(self) -> list[str]:
        folder = f"{self.server.root}/{self.namespace}/snapshots/"
        return [info.key.rsplit("/", 1)[-1] for info in self.server.provider.list(folder)]

    def has_snapshot(self, short: str) -> bool:
        return bool(short) and any(n.startswith(short) for n in self._snapshot_names())

    def prune(self) -> bool:
        """Remove what no snapshot uses; False (nothing done) when another job holds the
        repository: a later delete, or the sweep, prunes it then."""
        try:
            self._run(["unlock"], "removing stale restic locks")
            self._run(["prune"], "pruning the restic repository")
        except ResticError as exc:
            if "already locked" in str(exc):
                return False
            raise
        return True

    def stats(self) -> dict:
        return json.loads(self._run(["stats", "--json", "--mode", "raw-data"], "restic stats"))


class _Process:
    """A running restic: stdout and stderr read on threads (restic never blocks on
    them), and a watcher that stops it once the store failed under it."""

    def __init__(self, proc: subprocess.Popen, repository: Repository):
        self.proc = proc
        self.repository = repository
        self.stdout_lines: list[bytes] = []
        self.stderr = bytearray()
        self.killed = False
        self._threads = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._watch, daemon=True)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            if len(self.stderr) < 64 * 1024:
                self.stderr += line

    def _watch(self) -> None:
        while self.proc.poll() is None:
            if self.repository.server.failure is not None and not self.killed:
                self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(WATCH)

    def read_lines(self) -> None:
        """Keep stdout's lines (JSON messages), on a thread of their own."""
        thread = threading.Thread(target=self._read_lines, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_lines(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(b'{"message_type":"status"'):
                continue
            self.stdout_lines.append(line)

    def kill(self) -> None:
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def wait(self) -> int:
        code = self.proc.wait()
        for thread in self._threads:
            thread.join()
        return code

    def reason(self, what: str, code: int) -> ResticError:
        failure = self.repository.server.failure
        if failure is not None:
            return ResticError(f"{what}: the location failed: {failure}")
        text = self.repository.clean(self.stderr.decode("utf-8", "replace")).strip()
        lines = [line for line in text.splitlines() if line.strip()]
        said = " / ".join(lines[-4:])[-REASON_CHARS:] or "no message"
        if DAMAGE in text:  # a pack that does not authenticate: bit rot or tampering
            what = f"the stored copy is damaged ({what} found data that fails its check)"
        return ResticError(f"{what}: restic exited with code {code} ({said})")

    def finish(self, what: str) -> bytes:
        """stdout once restic ended well; else ResticError with its reason."""
        out = self.proc.stdout.read()
        code = self.wait()
        if code != 0:
            raise self.reason(what, code)
        return out


class BackupWriter(Writer):
    """Bytes in, a restic snapshot out (``snapshot``, ``data_added``, ``size``)."""

    def __init__(self, process: _Process):
        self.process = process
        self.process.read_lines()
        self.snapshot = ""
        self.data_added = 0
        self.bytes_written = 0

    def write(self, data: bytes) -> int:
        try:
            self.process.proc.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            self.process.proc.stdin.close() if not self.process.proc.stdin.closed else None
            raise self.process.reason("restic backup", self.process.wait()) from None
        self.bytes_written += len(data)
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.proc.stdin.close()
        code = self.process.wait()
        if code != 0:
            raise self.process.reason("restic backup", code)
        for line in self.process.stdout_lines:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if message.get("message_type") == "summary":
                    self.snapshot = message.get("snapshot_id", "")
                    self.data_added = int(message.get("data_added") or 0)
        if not self.snapshot:
            raise ResticError("restic backup ended without naming its snapshot.")

    def abort(self) -> None:
        self.process.kill()
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.proc.stdin.close()
        self.process.wait()


class DumpReader:
    """``restic dump``'s stdout as a stream; at its end restic's exit is checked, so a
    failed dump raises its reason rather than passing for a short copy."""

    def __init__(self, process: _Process):
        self.process = process
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        data = self.process.proc.stdout.read(size)
        if not data and not self._ended:
            self._ended = True
            code = self.process.wait()
            if code != 0:
                raise self.process.reason("restic dump", code)
        return data

    def close(self) -> None:
        if not self._ended:
            self.process.kill()
        self.process.proc.stdout.close()
        self.process.wait()
