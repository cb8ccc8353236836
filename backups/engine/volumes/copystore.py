"""Where a job's volume copies go and come back from: restic repositories or tar files.

A copy is written deduplicated (format "restic": a snapshot in the namespace's restic
repository, ``<prefix>-volumes-restic/<namespace>/``) when the location gives restic
passwords (``Store.restic_password``) and restic is installed on the worker; else as a
plain tar file (format "tar", ``backups/<b>/volumes/<ns>/<claim>.tar``), as before. The
record's ``format`` picks the reader at restore time, so old tar copies still restore.

One REST server (``restic_rest.py``) serves the job's repositories while it runs;
``close()`` stops it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging

from backups.engine.storage.base import NotFound, StorageError
from backups.engine.volumes.restic import BackupWriter, Repository, ResticError, restic_binary
from backups.engine.volumes.restic_rest import ResticServer

logger = logging.getLogger(__name__)
TAG = "palette-backup"
RESTIC, TAR = "restic", "tar"


class CopyStore:
    def __init__(self, store):
        self.store = store
        self._server: ResticServer | None = None
        self._repositories: dict[str, Repository] = {}

    def format(self) -> str:
        """How new copies are written here, and why when not deduplicated."""
        return RESTIC if self.store.restic_password and restic_binary() else TAR

    def why_tar(self) -> str:
        if not self.store.restic_password:
            return "this location keeps no restic password"
        return "restic is not installed on this worker"

    def repository(self, namespace: str) -> Repository:
        if not self.store.restic_password:
            raise ResticError("This location keeps no restic password for its volume copies.")
        if namespace not in self._repositories:
            if self._server is None:
                self._server = ResticServer(self.store.provider, self.store.layout.restic_root)
            password = self.store.restic_password(namespace)
            self._repositories[namespace] = Repository(self._server, namespace, password)
        return self._repositories[namespace]

    # Backup --------------------------------------------------------------------------

    def writer(self, backup: str, namespace: str, claim: str):
        """A writer for the copy of ``claim`` (a context manager: leaving it on an
        exception throws the copy away)."""
        if self.format() == RESTIC:
            return self.repository(namespace).backup(f"{claim}.tar", [f"{TAG}={backup}"])
        key = self.store.layout.volume_copy(backup, namespace, claim)
        return self.store.provider.open_write(key, "application/x-tar")

    def record(self, writer, backup: str, namespace: str, claim: str, size: int,
               sha256: str) -> dict:  # fmt: skip
        """The copy's record, once ``writer`` closed."""
        if isinstance(writer, BackupWriter):
            return {
                "format": RESTIC, "repository": self.repository(namespace).where,
                "namespace": namespace, "snapshot": writer.snapshot, "filename": f"{claim}.tar",
                "size": size,
                "sha256": sha256, "stored": writer.data_added,
            }  # fmt: skip
        key = self.store.layout.volume_copy(backup, namespace, claim)
        return {"key": key, "size": size, "sha256": sha256, "format": TAR}

    # Restore -------------------------------------------------------------------------

    def open(self, copy: dict, claim: str):
        """A readable stream of the copy (raises StorageError, NotFound when missing)."""
        if copy.get("format") == RESTIC:
            repository = self.repository(copy["namespace"])
            if not repository.exists() or not repository.has_snapshot(copy["snapshot"]):
                raise NotFound(f"Snapshot {copy['snapshot']} is not in {repository.where}.")
            return repository.dump(copy["snapshot"], copy.get("filename") or f"{claim}.tar")
        return self.store.provider.open_read(copy["key"])

    # Deleting ------------------------------------------------------------------------

    def forget(self, namespace: str, snapshots: list[str]) -> bool:
        """Forget ``snapshots`` of the namespace's repository and prune it when no other
        job holds it; False when the prune was left for later."""
        if not snapshots:
            return True
        repository = self.repository(namespace)
        repository.forget(snapshots)
        return repository.prune()

    def forget_backup(self, backup: str, namespaces) -> list[str]:
        """Forget every snapshot tagged for ``backup`` in these namespaces' repositories
        (what deleting the backup does); the namespaces whose prune was left for later."""
        later = []
        for namespace in sorted(set(namespaces)):
            ids = [s["id"] for s in self.repository(namespace).snapshots(f"{TAG}={backup}")]
            if ids and not self.forget(namespace, ids):
                later.append(namespace)
        return later

    def close(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.close()
            self._server = None
            self._repositories.clear()


def forget_backup(store, backup: str, *, everywhere: bool = False) -> list[str]:
    """Deleting ``backup``: forget its restic snapshots (in the namespaces its volume
    records name; with ``everywhere``, when it has none, as for a job that died before
    writing them, in every repository of the location); the namespaces whose prune was
    left for later. Raises StorageError."""
    key = store.layout.backup_file(backup, "volumecopies")
    try:
        namespaces = restic_namespaces(json.loads(gzip.decompress(store.provider.get_bytes(key))))
    except NotFound:
        namespaces = set()
        if everywhere and restic_binary():
            namespaces = set(store.provider.list_folders(store.layout.restic_root + "/"))
    if not namespaces or not store.restic_password:
        return []
    copies = CopyStore(store)
    try:
        return copies.forget_backup(backup, namespaces)
    finally:
        copies.close()


def restic_namespaces(records: list[dict]) -> set[str]:
    """The namespaces whose restic repositories hold copies of these volume records."""
    return {
        (r.get("copy") or {}).get("namespace", r.get("namespace", ""))
        for r in records
        if (r.get("copy") or {}).get("format") == RESTIC
    }


def forget_quietly(copies: CopyStore, namespace: str, snapshots: list[str]) -> str:
    """Forget a failed backup's snapshots (best effort): "" or what went wrong."""
    try:
        copies.forget(namespace, snapshots)
    except StorageError as exc:
        logger.warning("forgetting restic snapshots in %s: %s", namespace, exc)
        return str(exc)
    return ""
