"""The volume data of one backup: hooks, CSI snapshots, copies into the location.

Driven by the backup's run (``backup/run.py``), in this order:

1. ``prepare``: the claims in the backup's scope (namespace filter, label selector,
   Velero's exclude label, ``backup.velero.io/backup-volumes-excludes`` on the pods that
   mount them), each claim's volume, driver and snapshot class, and what to do with it
   (the backup's mode, overridden per storage class by the policy).
2. ``capture`` (before the resources are listed, so that the archive holds the
   snapshots and the claims' ``velero.io/volume-snapshot-name``): pre-backup hooks of
   every pod in scope; the snapshots, awaited together (bounded); the copies that read
   the live volume (claims without a snapshot), still between the hooks; the post-backup
   hooks. A pod whose pre-hook fails with on-error Fail fails its own volumes only.
3. ``copy_from_snapshots`` (after the archive): a temporary claim from each snapshot, a
   mover on it, the copy; then a snapshot taken only to copy from is deleted.
4. ``files``: Velero's volume records and the console's own (``records.py``).

Every temporary object is labelled ``palette.io/operation`` and deleted by ``cleanup``
(the job calls it whatever happens; the reaper and the sweep catch what a dead worker
left). ``discard`` also deletes the snapshots kept for a backup that did not complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from backups.engine.kube.api import ApiError, ClusterUnreachable
from backups.engine.volumes import hooks
from backups.engine.volumes.cleanup import CLEANUP_WAIT, sweep_operation
from backups.engine.volumes.cluster import Objects, content_path, core_path
from backups.engine.volumes.copystore import CopyStore, forget_quietly
from backups.engine.volumes.mover import MoveFailed, Mover, MoverSettings
from backups.engine.volumes.objects import (
    BACKUP_LABEL,
    EXCLUDES_ANNOTATION,
    OPERATION_LABEL,
    SNAPSHOT_API,
    VELERO_BACKUP_LABEL,
    VELERO_SNAPSHOT_NAME,
    choose_snapshot_class,
    decide_method,
    excluded_volumes,
    label_value,
    pod_claims,
)
from backups.engine.volumes.records import (
    FAILED,
    RUNNING,
    SKIPPED,
    VolumeEntry,
    VolumeReporting,
)
from backups.engine.volumes.snapshots import Snapshots


class VolumeBackup(VolumeReporting):
    def __init__(self, kube, request, scope, executor, report_volume, report_hook):
        self.objects = Objects(kube)
        self.kube = kube
        self.name = request.name
        self.spec = request.spec
        self.settings = request.volumes
        self.operation = label_value(request.operation or f"backup-{request.name}")
        self.store = request.store
        self.scope = scope
        self.run = executor  # log, results, should_stop, stop_here
        self._report_volume: Callable = report_volume
        self._report_hook: Callable = report_hook
        self.entries: list[VolumeEntry] = []
        self.pods: list[dict] = []
        self.snapshots = Snapshots(self.objects, self.settings, self.run.should_stop)
        self.copies = CopyStore(self.store)
        self.mover_settings = MoverSettings(
            image=self.settings.mover_image,
            start_timeout=self.settings.mover_start_timeout,
            idle_timeout=self.settings.idle_timeout,
            deadline=self.settings.mover_deadline,
        )

    # 1. What to capture ------------------------------------------------------------

    def _in_scope(self, obj: dict) -> bool:
        """In the backup's namespaces, not excluded, and no temporary object of a job."""
        meta = obj.get("metadata") or {}
        if not self.scope.namespaces.allows(meta.get("namespace", "")):
            return False
        labels = meta.get("labels") or {}
        return labels.get("velero.io/exclude-from-backup") != "true" and (
            OPERATION_LABEL not in labels
        )

    def _backs_up(self, group_resource: str) -> bool:
        scope = self.scope
        if group_resource in scope.excluded:
            return False
        return scope.included is None or group_resource in scope.included

    def _listed(self, kind: str) -> list[dict]:
        if not self._backs_up(kind):  # claims (or pods) left out of the backup
            return []
        found = self.objects.list(f"/api/v1/{kind}", self.spec.label_selector)
        return [obj for obj in found if self._in_scope(obj)]

    def prepare(self) -> None:
        claims = self._listed("persistentvolumeclaims")
        self.pods = [p for p in self._listed("pods")
                     if (p.get("status") or {}).get("phase") == "Running"]  # fmt: skip
        excluded, nodes = set(), {}
        for pod in self.pods:
            ns = pod["metadata"]["namespace"]
            skip = excluded_volumes(pod)
            for volume, claim in pod_claims(pod).items():
                nodes.setdefault(f"{ns}/{claim}", (pod.get("spec") or {}).get("nodeName", ""))
                if volume in skip:
                    excluded.add(f"{ns}/{claim}")
        classes = self.snapshots.classes()
        for claim in claims:
            self.entries.append(self._entry(claim, excluded, nodes, classes))
        counted = ", ".join(f"{e.key} ({e.method or 'skipped'})" for e in self.entries)
        self.run.log(f"Volumes: {len(self.entries)} claims in scope: {counted or 'none'}.")

    def _entry(self, claim: dict, excluded: set, nodes: dict, classes) -> VolumeEntry:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        entry = VolumeEntry(
            namespace=meta["namespace"], claim=meta["name"], pv_name=spec.get("volumeName", ""),
            storage_class=spec.get("storageClassName") or "",
            capacity=((spec.get("resources") or {}).get("requests") or {}).get("storage", ""),
            access_modes=list(spec.get("accessModes") or []),
            started=datetime.now(UTC),
        )  # fmt: skip
        entry.node = nodes.get(entry.key, "")
        if entry.key in excluded:
            return self._skip(entry, f"excluded by {EXCLUDES_ANNOTATION} on its pod")
        if (claim.get("status") or {}).get("phase") != "Bound" or not entry.pv_name:
            return self._skip(entry, "the claim is not bound to a volume")
        pv = self.objects.find(f"/api/v1/persistentvolumes/{entry.pv_name}") or {}
        pv_spec = pv.get("spec") or {}
        entry.reclaim_policy = pv_spec.get("persistentVolumeReclaimPolicy", "")
        entry.pv_labels = (pv.get("metadata") or {}).get("labels") or {}
        entry.driver = (pv_spec.get("csi") or {}).get("driver", "")
        snapshot_class, why = ("", "not a CSI volume")
        if entry.driver:
            snapshot_class, why = choose_snapshot_class(classes, entry.driver)
        policy = self.spec.volume_policy.get(entry.storage_class)
        snap, copy, note = decide_method(self.spec.volume_mode, policy, bool(snapshot_class))
        if not snap and not copy:
            return self._skip(entry, note)
        entry.method = "snapshot_and_copy" if snap and copy else ("snapshot" if snap else "copy")
        if snapshot_class:
            # A copy reads a snapshot whenever one can be taken (a temporary one for "copy").
            entry.snapshot = {"class": snapshot_class, "kept": snap}
        if note or (not snapshot_class and entry.driver):
            self.run.log(f"Volume {entry.key}: {note or why}.")
        return entry

    def _skip(self, entry: VolumeEntry, reason: str) -> VolumeEntry:
        entry.state, entry.reason, entry.finished = SKIPPED, reason, datetime.now(UTC)
        return entry

    def active(self) -> list[VolumeEntry]:
        return [e for e in self.entries if e.state not in (SKIPPED, FAILED)]

    # 2. Capture --------------------------------------------------------------------

    def capture(self) -> None:
        for entry in self.entries:
            self.report(entry)
        failed_pods = self._hooks(hooks.PRE_BACKUP, self.run.should_stop)
        try:
            for entry in self.active():
                owner = failed_pods.get(entry.key)
                if owner:
                    self.fail(entry, f"the pre-backup hook of pod {owner} failed (on-error Fail)")
            wanted = [e for e in self.active() if e.snapshot]
            for entry in wanted:
                entry.state = RUNNING
                self.report(entry)
            self.snapshots.take(wanted, self.operation, self._snapshot_labels, self.fail)
            self.run.stop_here()
            for entry in wanted:
                if entry.state != FAILED and not entry.copy_pending():
                    self.succeed(entry)
            for entry in self.active():
                if not entry.snapshot and entry.method != "snapshot":
                    self._copy(entry, entry.claim, entry.node)
                    self.run.stop_here()
        finally:
            # Whatever happened (a cancel too), what the pre-hooks froze is thawed.
            self._hooks(hooks.POST_BACKUP, lambda: False)

    def _snapshot_labels(self, entry: VolumeEntry) -> dict[str, str]:
        if entry.snapshot.get("kept"):
            return {
                BACKUP_LABEL: label_value(self.name),
                VELERO_BACKUP_LABEL: label_value(self.name),
            }
        return {OPERATION_LABEL: self.operation}

    def _hooks(self, prefix: str, should_stop) -> dict[str, str]:
        """Run ``prefix`` hooks of every pod in scope; claim key -> pod, for failed ones."""
        failed: dict[str, str] = {}
        for pod in self.pods:
            hook = hooks.pod_hook(pod, prefix)
            if hook is None:
                continue
            report = hooks.run_hook(self.kube, pod, hook, should_stop)
            self._report_hook(report)
            where = pod["metadata"]["namespace"]
            text = hooks.describe(report)
            if report.ok:
                self.run.log(text)
                continue
            if hook.fail_on_error:
                self.run.results.error(text, namespace=where)
                self.run.log(text, "error")
                for claim in pod_claims(pod).values():
                    failed[f"{where}/{claim}"] = f"{where}/{pod['metadata']['name']}"
            else:
                self.run.results.warning(text + " (on-error Continue)", namespace=where)
                self.run.log(text, "warning")
        return failed

    # 3. Copies ---------------------------------------------------------------------

    def copy_from_snapshots(self) -> None:
        for entry in self.active():
            if not entry.copy_pending() or not entry.snapshot.get("name"):
                continue
            claim = None
            try:
                claim = self.snapshots.temporary_claim(entry, self.operation)
                self._copy(entry, claim, "", from_snapshot=True)
            except (ApiError, MoveFailed) as exc:
                self.fail(entry, f"the copy from snapshot failed: {exc}")
            finally:
                if claim:
                    self._quietly(self.objects.delete, core_path(entry.namespace,
                                  "persistentvolumeclaims", claim))  # fmt: skip
                if not entry.snapshot.get("kept"):
                    self.snapshots.delete(entry)
            self.run.stop_here()

    def _copy(self, entry: VolumeEntry, claim: str, node: str, from_snapshot=False) -> None:
        entry.state, entry.from_snapshot = RUNNING, from_snapshot
        self.report(entry)
        mover = Mover(self.objects, self.mover_settings, self.run.should_stop)
        try:
            mover.start(entry.namespace, claim, operation=self.operation, read_only=True, node=node)
            entry.bytes_total = mover.used_bytes()
            self.report(entry)

            def progress(done: int) -> None:
                entry.bytes_done = done
                entry.bytes_total = max(entry.bytes_total, done)
                self.report(entry)

            with self.copies.writer(self.name, entry.namespace, entry.claim) as writer:
                size, sha = mover.copy_out(writer, progress)
            entry.copy = self.copies.record(writer, self.name, entry.namespace, entry.claim,
                                            size, sha)  # fmt: skip
            entry.bytes_done = entry.bytes_total = size
            self.succeed(entry)
            self.run.log(f"Volume {entry.key}: copied {size} bytes, sha256 {sha}, "
                         + self._stored(entry.copy) + ".")  # fmt: skip
        except MoveFailed as exc:
            self.fail(entry, f"the copy failed: {exc}")
        except ApiError as exc:
            self.fail(entry, f"the mover pod could not be created: {exc}")
        except Exception as exc:
            from backups.engine.storage.base import StorageError

            if not isinstance(exc, StorageError):
                raise
            self.fail(entry, f"writing the copy to the location failed: {exc}")
        finally:
            self._quietly(mover.remove)

    def _stored(self, copy: dict) -> str:
        if copy.get("format") == "restic":
            return (f"deduplicated with restic: {copy['stored']} new bytes stored, "
                    f"snapshot {copy['snapshot']}")  # fmt: skip
        return f"as a tar file ({self.copies.why_tar()})"

    # Archive ----------------------------------------------------------------------------

    def claim_rewrite(self, namespace: str, name: str, obj: dict) -> dict:
        """The claim as Velero writes it when its volume has a kept CSI snapshot."""
        for entry in self.entries:
            if (
                entry.namespace == namespace
                and entry.claim == name
                and entry.snapshot.get("kept")
                and entry.snapshot.get("ready")
            ):
                meta = obj.setdefault("metadata", {})
                meta.setdefault("annotations", {})[VELERO_SNAPSHOT_NAME] = entry.snapshot["name"]
                meta.setdefault("labels", {})[VELERO_SNAPSHOT_NAME] = entry.snapshot["name"]
        return obj

    def kept_contents(self) -> list[dict]:
        """The VolumeSnapshotContents of kept snapshots, labelled as Velero labels them."""
        found = []
        for entry in self.entries:
            name = entry.snapshot.get("content") if entry.snapshot.get("kept") else ""
            if not name or entry.state == FAILED:
                continue
            content = self.objects.find(content_path(name))
            if content:
                labels = content.setdefault("metadata", {}).setdefault("labels", {})
                labels[VELERO_BACKUP_LABEL] = label_value(self.name)
                content.update(apiVersion=SNAPSHOT_API, kind="VolumeSnapshotContent")
                found.append(content)
        return found

    # Clean-up ---------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete this run's temporary objects (best effort: the sweep retries)."""
        try:
            sweep_operation(self.objects, self.operation, wait=CLEANUP_WAIT)
        finally:
            self.copies.close()

    def discard(self) -> None:
        """A backup that will not be kept: also delete the snapshots it kept, and
        forget its restic snapshots."""
        for entry in self.entries:
            if entry.snapshot.get("name"):
                self.snapshots.delete(entry)
        made: dict[str, list[str]] = {}
        for entry in self.entries:
            if (entry.copy or {}).get("format") == "restic":
                made.setdefault(entry.namespace, []).append(entry.copy["snapshot"])
        for namespace, ids in made.items():
            failed = forget_quietly(self.copies, namespace, ids)
            if failed:
                self.run.log(f"Volume copies of {namespace}: {failed}", "warning")

    def _quietly(self, call, *args) -> None:
        with contextlib.suppress(ApiError, ClusterUnreachable):
            call(*args)
