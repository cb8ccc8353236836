"""What a backup records about its volumes: Velero 1.18's files, and the console's own.

Velero's (``VELERO-FORMAT.md``, "Volumes"): ``<b>-volumeinfo.json.gz``, one record per
PV (``velero_info.py`` says how each of the console's methods is written, and why), and
``<b>-itemoperations.json.gz``, one record per CSI snapshot kept in the cluster (here).
Velero restores the console's kept snapshots as its own; it cannot read the console's
copies (plain tar files in the console's layout, not a Kopia repository), so it brings
those claims back as new empty volumes (the console says so on the backup's page).

The console's own: ``<b>-palette-volumes.json.gz`` (``VolumeEntry`` as JSON), what a
restore needs: the claim, its class, the snapshot (name, handle, content) and the copy
(key, size, sha256).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from backups.engine.volumes.objects import SNAPSHOT_GROUP

SUCCEEDED, FAILED, SKIPPED, RUNNING, PENDING = (
    "succeeded",
    "failed",
    "skipped",
    "running",
    "pending",
)
SNAPSHOT_ACTION = "velero.io/csi-volumesnapshot-backupper"


def rfc3339(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass
class VolumeEntry:
    """One claim of a backup (or restore) and what became of its data."""

    namespace: str
    claim: str
    pv_name: str = ""
    storage_class: str = ""
    driver: str = ""
    capacity: str = ""  # the claim's request, e.g. 64Mi
    access_modes: list[str] = field(default_factory=list)
    method: str = ""  # snapshot | copy | snapshot_and_copy | "" (skipped)
    state: str = PENDING  # pending | running | succeeded | failed | skipped
    reason: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    # the kept or temporary snapshot: name, class, content, handle, restore_size, kept
    snapshot: dict = field(default_factory=dict)
    copy: dict = field(default_factory=dict)  # key, size, sha256, format
    from_snapshot: bool = False  # the copy was read from a snapshot (else the live volume)
    node: str = ""  # a node where a pod mounts it (a live copy runs there)
    reclaim_policy: str = ""
    pv_labels: dict = field(default_factory=dict)
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.claim}"

    def copy_pending(self) -> bool:
        """A copy is asked for and not made yet."""
        return "copy" in self.method and not self.copy and self.state not in (FAILED, SKIPPED)

    def fail(self, reason: str) -> None:
        if self.state != FAILED:
            self.state, self.reason = FAILED, reason
            self.finished = datetime.now(UTC)

    def as_json(self) -> dict:
        doc = asdict(self)
        doc["started"], doc["finished"] = rfc3339(self.started), rfc3339(self.finished)
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> VolumeEntry:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        known["started"] = known["finished"] = None
        return cls(**known)


def item_operation(entry: VolumeEntry, backup_name: str, backup_uid: str) -> dict | None:
    """The CSI snapshot's asynchronous operation, as Velero records it (kept snapshots)."""
    snapshot = entry.snapshot
    if not snapshot.get("kept") or not snapshot.get("name"):
        return None
    moment = rfc3339(entry.finished or entry.started)
    return {
        "spec": {
            "backupName": backup_name,
            "backupUID": backup_uid,
            "backupItemAction": SNAPSHOT_ACTION,
            "resourceIdentifier": {
                "Group": SNAPSHOT_GROUP, "Resource": "volumesnapshots",
                "Namespace": entry.namespace, "Name": snapshot["name"],
            },
            "operationID": snapshot.get("operation_id", ""),
            "postOperationItems": [
                {"Group": SNAPSHOT_GROUP, "Resource": "volumesnapshots",
                 "Namespace": entry.namespace, "Name": snapshot["name"]},
                {"Group": SNAPSHOT_GROUP, "Resource": "volumesnapshotcontents",
                 "Namespace": "", "Name": snapshot.get("content", "")},
            ],
        },
        "status": {
            "phase": "Completed" if snapshot.get("ready") else "Failed",
            "error": "" if snapshot.get("ready") else entry.reason,
            "nCompleted": 0, "nTotal": 0, "operationUnits": "",
            "created": moment, "started": moment, "updated": moment,
        },
    }  # fmt: skip


def operation_counts(entries: list[VolumeEntry]) -> dict[str, int]:
    """The counters of ``velero-backup.json``'s status for the kept CSI snapshots (one
    item operation each), without the zeros (Go's omitempty): ``velero backup describe``
    lists the operations only when ``backupItemOperationsAttempted`` says there are some."""
    operations = [op for op in (item_operation(e, "", "") for e in entries) if op]
    done = sum(1 for op in operations if op["status"]["phase"] == "Completed")
    counts = {
        "csiVolumeSnapshotsAttempted": len(operations),
        "csiVolumeSnapshotsCompleted": done,
        "backupItemOperationsAttempted": len(operations),
        "backupItemOperationsCompleted": done,
        "backupItemOperationsFailed": len(operations) - done,
    }
    return {key: value for key, value in counts.items() if value}


def operation_id(namespace: str, snapshot: str, moment: datetime) -> str:
    return f"{namespace}/{snapshot}/{rfc3339(moment)}"


class VolumeReporting:
    """How a volume's entry moves, shared by VolumeBackup and VolumeRestore: each sets
    ``run`` (the executor: log and results) and ``_report_volume`` (the caller's row)."""

    def report(self, entry: VolumeEntry) -> None:
        self._report_volume(entry)

    def succeed(self, entry: VolumeEntry) -> None:
        entry.state, entry.finished = SUCCEEDED, datetime.now(UTC)
        self.report(entry)

    def fail(self, entry: VolumeEntry, reason: str) -> None:
        entry.fail(reason)
        message = f"Volume {entry.key}: {reason}"
        self.run.results.error(message, namespace=entry.namespace)
        self.run.log(message, "error")
        self.report(entry)
