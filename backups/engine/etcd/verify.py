"""Download a stored etcd snapshot and prove it is intact: sha256, etcd's checksum, etcdutl.

Three independent checks:

1. the sha256 of the downloaded bytes equals the one recorded when the
   snapshot was taken (the object was not changed or truncated in the store);
2. the checksum etcd appends to a snapshot (sha256 of the database, the last
   32 bytes) matches the database (what ``etcdutl snapshot restore`` checks);
3. ``etcdutl snapshot status -w json`` opens the database and reports its
   hash, revision, number of keys and size (it is a readable bbolt file).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backups.engine.etcd.client import CHECKSUM_SIZE
from backups.engine.storage.base import Provider, StorageError

CHUNK = 1024 * 1024
ETCDUTL_TIMEOUT = 300  # seconds; status reads the whole database


class VerifyError(Exception):
    """A check failed; ``str()`` is the sentence to show."""


@dataclass
class Downloaded:
    path: Path
    size_bytes: int
    sha256: str
    # etcd's own checksum at the end of the file: True/False, None when the file has none.
    embedded_checksum_ok: bool | None
    seconds: float


@dataclass
class VerifyResult:
    ok: bool
    error: str = ""
    sha256: str = ""  # of the downloaded bytes
    sha256_matches: bool = False
    size_bytes: int = 0
    embedded_checksum_ok: bool | None = None
    # From `etcdutl snapshot status`:
    hash: int | None = None
    revision: int | None = None
    total_keys: int | None = None
    total_size: int | None = None
    storage_version: str = ""
    seconds: float = 0.0


class _Hasher:
    """sha256 of everything, and of everything but the last 32 bytes, in one pass each."""

    def __init__(self):
        self.whole = hashlib.sha256()
        self.data = hashlib.sha256()
        self.tail = b""
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.whole.update(chunk)
        self.size += len(chunk)
        buf = self.tail + chunk
        if len(buf) > CHECKSUM_SIZE:
            self.data.update(buf[:-CHECKSUM_SIZE])
            self.tail = buf[-CHECKSUM_SIZE:]
        else:
            self.tail = buf

    def embedded_ok(self) -> bool | None:
        # etcd's database is a whole number of 512-byte-aligned pages; 32 bytes over
        # means the checksum is there (the rule etcdutl uses).
        if self.size % 512 != CHECKSUM_SIZE:
            return None
        return self.data.digest() == self.tail


def download(
    provider: Provider,
    key: str,
    dest: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> Downloaded:
    """Stream ``key`` into the file ``dest``, hashing on the way (raises StorageError)."""
    dest = Path(dest)
    hasher = _Hasher()
    started = time.monotonic()
    last = 0.0
    with provider.open_read(key) as stream, dest.open("wb") as out:
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            out.write(chunk)
            if progress and time.monotonic() - last > 0.25:
                last = time.monotonic()
                progress(hasher.size)
    if progress:
        progress(hasher.size)
    return Downloaded(
        dest,
        hasher.size,
        hasher.whole.hexdigest(),
        hasher.embedded_ok(),
        time.monotonic() - started,
    )


def find_etcdutl(path: str | None = None) -> str:
    """The etcdutl to run: ``path``, else $ETCDUTL, else the devenv's, else PATH."""
    candidates = [path, os.environ.get("ETCDUTL")]
    if not path:
        try:
            from devenv import load_env

            candidates.append(load_env().get("ETCDUTL"))
        except ImportError:  # pragma: no cover - devenv ships with the console
            pass
        candidates.append(shutil.which("etcdutl"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    where = path or "$ETCDUTL, the devenv or PATH"
    raise VerifyError(f"etcdutl was not found ({where}); it is needed to read snapshots.")


def etcdutl_status(path: str | Path, etcdutl: str) -> dict:
    """``etcdutl snapshot status -w json`` of a snapshot file (raises VerifyError)."""
    try:
        proc = subprocess.run(
            [etcdutl, "snapshot", "status", str(path), "-w", "json"],
            capture_output=True,
            text=True,
            timeout=ETCDUTL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as err:
        raise VerifyError(f"etcdutl was not found at {etcdutl}.") from err
    except subprocess.TimeoutExpired as err:
        raise VerifyError(
            f"etcdutl snapshot status did not finish within {ETCDUTL_TIMEOUT} seconds."
        ) from err
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise VerifyError(
            "etcdutl cannot read the snapshot: " + (message[-1] if message else "no output")
        )
    try:
        return json.loads(proc.stdout)
    except ValueError as err:
        raise VerifyError(
            f"etcdutl printed something that is not JSON: {proc.stdout[:200]}"
        ) from err


def check_file(
    downloaded: Downloaded, expected_sha256: str, etcdutl: str, result: VerifyResult
) -> VerifyResult:
    """Fill ``result`` from a downloaded file; raise VerifyError on the first failed check."""
    result.sha256 = downloaded.sha256
    result.size_bytes = downloaded.size_bytes
    result.embedded_checksum_ok = downloaded.embedded_checksum_ok
    result.sha256_matches = bool(expected_sha256) and downloaded.sha256 == expected_sha256.lower()
    if expected_sha256 and not result.sha256_matches:
        raise VerifyError(
            f"The stored snapshot's sha256 is {downloaded.sha256}, not the recorded "
            f"{expected_sha256}: the object was changed or damaged in the store."
        )
    if downloaded.embedded_checksum_ok is False:
        raise VerifyError(
            "The snapshot does not match the checksum etcd wrote at its end: the file is damaged."
        )
    status = etcdutl_status(downloaded.path, etcdutl)
    result.hash = status.get("hash")
    result.revision = status.get("revision")
    result.total_keys = status.get("totalKey")
    result.total_size = status.get("totalSize")
    result.storage_version = status.get("version", "")
    return result


def verify_snapshot(
    provider: Provider,
    key: str,
    sha256: str,
    etcdutl_path: str | None = None,
    *,
    workdir: str | Path | None = None,
) -> VerifyResult:
    """Download ``key`` to a temp file, check it three ways, delete the file.

    Never raises for store or etcdutl failures: ``ok`` and ``error`` say.
    """
    started = time.monotonic()
    result = VerifyResult(ok=False)
    with tempfile.TemporaryDirectory(prefix="etcd-verify-", dir=workdir) as tmp:
        try:
            etcdutl = find_etcdutl(etcdutl_path)
            downloaded = download(provider, key, Path(tmp) / "snapshot.db")
            check_file(downloaded, sha256, etcdutl, result)
            result.ok = True
        except StorageError as err:
            result.error = f"Could not download the snapshot: {err}"
        except VerifyError as err:
            result.error = str(err)
        except OSError as err:
            result.error = f"Could not write the downloaded snapshot to a temp file: {err}"
    result.seconds = time.monotonic() - started
    return result
