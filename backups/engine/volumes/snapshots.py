"""CSI VolumeSnapshots of a backup's claims: taken together, awaited (bounded), described.

A snapshot that is not ready within the timeout fails its volume with the driver's own
error when it gave one (``status.error.message``), and is deleted. A kept snapshot gets
the annotations Velero writes on it (handle, driver, deletion policy, restore size), so
the archive holds it as Velero's CSI plugin would.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

from backups.engine.kube.api import ApiError, ClusterUnreachable
from backups.engine.volumes.cluster import POLL, Objects, content_path, core_path, snapshot_path
from backups.engine.volumes.objects import (
    SNAPSHOT_API,
    claim_from_snapshot,
    parse_quantity,
    snapshot_object,
)
from backups.engine.volumes.records import FAILED, VolumeEntry, operation_id


class Snapshots:
    def __init__(self, objects: Objects, settings, should_stop):
        self.objects = objects
        self.settings = settings
        self.should_stop = should_stop

    def classes(self) -> list[dict]:
        try:
            return self.objects.list(f"/apis/{SNAPSHOT_API}/volumesnapshotclasses")
        except ApiError as exc:
            if exc.status == 404:  # no snapshot CRDs: no class anywhere
                return []
            raise

    def take(self, entries: list[VolumeEntry], operation: str, labels_of, fail) -> None:
        for entry in entries:
            body = snapshot_object(
                entry.namespace, entry.claim, entry.snapshot["class"], labels=labels_of(entry)
            )
            try:
                made = self.objects.create(snapshot_path(entry.namespace), body)
            except ApiError as exc:
                fail(entry, f"the VolumeSnapshot could not be created: {exc}")
                continue
            entry.snapshot["name"] = made["metadata"]["name"]
            entry.snapshot["operation_id"] = operation_id(
                entry.namespace, entry.snapshot["name"], datetime.now(UTC)
            )
        waiting = [e for e in entries if e.snapshot.get("name") and e.state != FAILED]
        deadline = time.monotonic() + self.settings.snapshot_timeout
        last: dict[str, str] = {}
        while waiting:
            for entry in list(waiting):
                ready, state = self._ready(entry)
                last[entry.key] = state
                if ready:
                    waiting.remove(entry)
                    self._describe(entry)
            if not waiting:
                break
            if self.should_stop():
                return  # the caller's next safe point cancels; cleanup removes them
            if time.monotonic() >= deadline:
                for entry in waiting:
                    fail(entry, f"the snapshot {entry.namespace}/{entry.snapshot['name']} was not "
                         f"ready after {self.settings.snapshot_timeout:g} seconds "
                         f"({last.get(entry.key) or 'no status yet'})")  # fmt: skip
                    self.delete(entry)
                return
            time.sleep(POLL)

    def _ready(self, entry: VolumeEntry) -> tuple[bool, str]:
        found = self.objects.find(snapshot_path(entry.namespace, entry.snapshot["name"]))
        if found is None:
            return False, "the VolumeSnapshot was deleted"
        status = found.get("status") or {}
        error = (status.get("error") or {}).get("message")
        if status.get("readyToUse"):
            entry.snapshot["content"] = status.get("boundVolumeSnapshotContentName", "")
            entry.snapshot["restore_size"] = parse_quantity(status.get("restoreSize", "0"))
            return True, "ready"
        if error:
            return False, f"error: {error}"
        return False, "readyToUse is false" if status else "no status yet"

    def _describe(self, entry: VolumeEntry) -> None:
        snap = entry.snapshot
        snap["ready"] = True
        content = self.objects.find(content_path(snap.get("content", ""))) or {}
        snap["handle"] = (content.get("status") or {}).get("snapshotHandle", "")
        policy = (content.get("spec") or {}).get("deletionPolicy", "")
        if snap.get("kept"):
            annotations = {
                "velero.io/csi-volumesnapshot-handle": snap["handle"],
                "velero.io/csi-driver-name": entry.driver,
                "velero.io/csi-vsc-deletion-policy": policy,
                "velero.io/csi-volumesnapshot-restore-size": str(snap.get("restore_size", 0)),
            }
            self.objects.patch(
                snapshot_path(entry.namespace, snap["name"]),
                {"metadata": {"annotations": annotations}},
            )

    def temporary_claim(self, entry: VolumeEntry, operation: str) -> str:
        """A claim restored from the entry's snapshot, bound (bounded wait); its name."""
        claim = {
            "metadata": {"name": entry.claim, "namespace": entry.namespace},
            "spec": {
                "accessModes": entry.access_modes,
                "storageClassName": entry.storage_class or None,
                "resources": {"requests": {"storage": entry.capacity or "1Gi"}},
            },
        }
        body = claim_from_snapshot(claim, entry.snapshot["name"], operation=operation)
        made = self.objects.create(core_path(entry.namespace, "persistentvolumeclaims"), body)
        return made["metadata"]["name"]

    def delete(self, entry: VolumeEntry) -> None:
        name = entry.snapshot.get("name")
        if name:
            with contextlib.suppress(ApiError, ClusterUnreachable):
                self.objects.delete(snapshot_path(entry.namespace, name))
