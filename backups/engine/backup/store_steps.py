"""The store steps of a backup's run (``run.py``): the files beside the archive
(metadata, log, resource list, results), and how a failed or cancelled backup is
recorded in the location, kept apart so that the run reads as its flow."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backups.engine.backup.volume_steps import BackupFailed
from backups.engine.job import CANCELLED
from backups.engine.storage.base import StorageError, Unreachable
from backups.engine.velero.format import backup_document, backup_json, gz_json
from backups.engine.volumes.records import operation_counts

logger = logging.getLogger(__name__)

COMPLETED, PARTIALLY_FAILED, FAILED = "Completed", "PartiallyFailed", "Failed"
# After a store failure, how long to keep trying to record the Failed phase.
FAILED_METADATA_RETRIES = (1, 2, 4, 8)


@dataclass
class BackupOutcome:
    phase: str  # Completed | PartiallyFailed | Failed | Cancelled
    error: str
    items: int
    errors: int
    warnings: int
    size_bytes: int
    sha256: str
    kubernetes_version: str
    started: datetime
    finished: datetime
    expires: datetime


class StoreSteps:
    """Mixed into ``BackupExecutor``: uses its ``provider``, ``layout``, ``name``, counters,
    ``results``, ``resources`` and log."""

    def _document(self, phase: str, finished: datetime | None = None, reason: str = "") -> dict:
        return backup_document(
            name=self.name,
            location_name=self.location_name,
            options=self.spec,
            phase=phase,
            started=self.started,
            expires=self.expires,
            finished=finished,
            version=self.version,
            items_total=max(self.total, self.done),
            items_done=self.done,
            errors=self.results.errors,
            warnings=self.results.warnings,
            failure_reason=reason,
            schedule_name=self.request.schedule_name,
            cluster_name=self.request.cluster.name,
            archive_sha256=self.sha256,
            snapshot_timeout=timedelta(seconds=self.request.volumes.snapshot_timeout),
            volume_counts=operation_counts(self.volumes.entries) if self.volumes else None,
        )

    def _put(self, kind: str, data: bytes, content_type: str = "application/gzip") -> None:
        self.provider.put_bytes(self.layout.backup_file(self.name, kind), data, content_type)

    def _put_metadata(self, phase: str, finished=None, reason: str = "") -> None:
        try:
            self._put("logs", self.logbuf.gz())
            self._put(
                "metadata", backup_json(self._document(phase, finished, reason)), "application/json"
            )
        except StorageError as exc:
            raise BackupFailed(f"Writing to the location failed: {exc}") from None

    def _put_final_files(self) -> None:
        try:
            self._put("resource-list", self.resources.gz())
            self._put("results", gz_json(self.results.as_dict()))
            for kind, data in self._volume_files().items():
                self._put(kind, data)
        except StorageError as exc:
            raise BackupFailed(f"Writing to the location failed: {exc}") from None
        phase = PARTIALLY_FAILED if self.results.errors else COMPLETED
        self.finished = datetime.now(UTC)
        self.log(
            f"Backup {phase}: {self.done} items, {self.results.errors} errors, "
            f"{self.results.warnings} warnings."
        )
        self._put_metadata(phase, self.finished)

    def _failed(self, reason: str) -> BackupOutcome:
        """Record the failure in the location (best effort), and the outcome."""
        self.results.error(reason)
        self.log(f"Backup Failed: {reason}", "error")
        self.progress("Failed", force=True)
        finished = datetime.now(UTC)
        document = backup_json(self._document(FAILED, finished, reason))
        for delay in (0, *FAILED_METADATA_RETRIES):
            time.sleep(delay)
            try:
                self._put("logs", self.logbuf.gz())
                self._put("results", gz_json(self.results.as_dict()))
                self._put("metadata", document, "application/json")
                break
            except StorageError as exc:
                logger.info("recording the failure of %s: %s", self.name, exc)
                if not isinstance(exc, Unreachable) and type(exc) is not StorageError:
                    break  # missing bucket, access denied...: waiting will not help
        return self._outcome(FAILED, reason, finished)

    def _cancelled(self) -> BackupOutcome:
        """Remove every object of this backup from the store (best effort), and say so."""
        self.log("Backup cancelled: removing what was written.", "warning")
        self.progress(CANCELLED, force=True)
        try:
            removed = self.provider.delete_prefix(self.layout.backup_dir(self.name))
        except StorageError as exc:
            logger.warning("cancelled backup %s: cleaning up failed: %s", self.name, exc)
            return self._outcome(CANCELLED, f"Cancelled; removing its objects failed: {exc}")
        logger.info("cancelled backup %s: removed %d objects", self.name, removed)
        return self._outcome(CANCELLED, "")

    def _outcome(self, phase: str, error: str, finished: datetime | None = None) -> BackupOutcome:
        finished = finished or self.finished or datetime.now(UTC)
        version = self.version.get("gitVersion", "") if self.version else ""
        return BackupOutcome(
            phase=phase,
            error=error,
            items=self.done,
            errors=self.results.errors,
            warnings=self.results.warnings,
            size_bytes=self.size if phase not in (FAILED, CANCELLED) else 0,
            sha256=self.sha256 if phase not in (FAILED, CANCELLED) else "",
            kubernetes_version=version,
            started=self.started,
            finished=finished,
            expires=self.expires,
        )
