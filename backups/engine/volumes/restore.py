"""Bringing a backup's volume data back, before the pods that mount it start.

Driven by the restore's run (``restore/run.py``) when "Restore persistent volumes" is set:

1. ``prepare(plan)`` (while planning, nothing created yet): read the backup's volume
   records (``<b>-palette-volumes.json.gz``); for each restored claim choose the source:
   its snapshot when the snapshot's content exists in the target cluster with the same
   handle (the same cluster), else its copy in the location, else none (the volume
   fails). The claim gets the mapped storage class (a class the target lacks fails the
   volume), loses ``volumeName`` (its volume is provisioned anew), and, from a snapshot,
   a ``dataSource`` naming a VolumeSnapshot recreated in the target namespace over a
   statically provisioned content (deletion policy Retain), as Velero restores it. The
   backup's own VolumeSnapshots and contents are left out: this replaces them.
2. ``before_group`` (apply): snapshot sources get their content and VolumeSnapshot;
   workloads that mount a failed claim are not created (their pods would start empty).
3. ``after_claims``: each copy is sent through a mover pod into its new claim, with the
   sha256 checked at both ends against the one recorded at backup time; a claim whose
   data is missing or damaged is deleted again and its workloads are not created.
4. ``post_hooks`` after the last group; ``cleanup`` always.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from datetime import UTC, datetime

from backups.engine.kube.api import ApiError, ClusterUnreachable
from backups.engine.storage.base import NotFound, StorageError
from backups.engine.volumes import hooks
from backups.engine.volumes.cleanup import CLEANUP_WAIT, sweep_operation
from backups.engine.volumes.cluster import (
    Objects,
    WaitTimeout,
    content_path,
    core_path,
    snapshot_path,
    wait_for,
)
from backups.engine.volumes.copystore import CopyStore
from backups.engine.volumes.mover import MoveFailed, Mover, MoverSettings
from backups.engine.volumes.objects import (
    OPERATION_LABEL,
    SNAPSHOT_API,
    SNAPSHOT_GROUP,
    label_value,
    pod_claims,
)
from backups.engine.volumes.records import (
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    VolumeEntry,
    VolumeReporting,
)
from backups.engine.volumes.velero_records import (
    ORIGIN,
    complete,
    entries_from_velero,
    missing_source,
)

VS = "volumesnapshots.snapshot.storage.k8s.io"
VSC = "volumesnapshotcontents.snapshot.storage.k8s.io"
WORKLOADS = (
    "pods", "deployments.apps", "statefulsets.apps", "replicasets.apps", "daemonsets.apps",
    "jobs.batch", "cronjobs.batch",
)  # fmt: skip


def _pod_spec(obj: dict) -> dict:
    spec = obj.get("spec") or {}
    if "jobTemplate" in spec:
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    if "template" in spec:
        return ((spec.get("template") or {}).get("spec")) or {}
    return spec


def mounted_claims(obj: dict) -> set[str]:
    return set(pod_claims({"spec": _pod_spec(obj)}).values())


class VolumeRestore(VolumeReporting):
    def __init__(self, kube, request, executor, report_volume, report_hook):
        self.objects = Objects(kube)
        self.kube = kube
        self.request = request
        self.spec = request.spec
        self.settings = request.volumes
        self.operation = label_value(request.operation or f"restore-{request.name}")
        self.run = executor
        self._report_volume = report_volume
        self._report_hook = report_hook
        self.entries: dict[tuple[str, str], VolumeEntry] = {}  # (target ns, claim)
        self._classes: list[dict] | None = None
        self.skipped_names: set[tuple[str, str]] = set()
        self.restored_pods: list[dict] = []
        self.copies = CopyStore(request.store)
        self.mover_settings = MoverSettings(
            self.settings.mover_image, self.settings.mover_start_timeout,
            self.settings.idle_timeout, self.settings.mover_deadline,
        )  # fmt: skip

    # 1. Planning --------------------------------------------------------------------

    def _records(self) -> list[dict]:
        """The console's volume records; for a backup Velero made (it has none), the ones
        read from Velero's ``volumeinfo`` (``velero_records.py``)."""
        store = self.request.store
        for kind, read in (("volumecopies", list), ("volumeinfo", entries_from_velero)):
            key = store.layout.backup_file(self.request.backup_name, kind)
            try:
                return read(json.loads(_gunzip(store.provider.get_bytes(key))))
            except NotFound:
                continue
        return []

    def _snapshot_classes(self) -> list[dict]:
        if self._classes is None:
            try:
                self._classes = self.objects.list(f"/apis/{SNAPSHOT_API}/volumesnapshotclasses")
            except ApiError:
                self._classes = []
        return self._classes

    def prepare(self, plan) -> None:
        records = {(r["namespace"], r["claim"]): r for r in self._records()}
        claims = plan.group("persistentvolumeclaims")
        mapping = self.spec.storage_class_mapping
        classes = {c["metadata"]["name"] for c in self.objects.list(
            "/apis/storage.k8s.io/v1/storageclasses")}  # fmt: skip
        gone_pvs = set()
        for item in claims.items if claims else []:
            record = records.get((item.source_namespace, item.name))
            body = item.body()
            spec = body.setdefault("spec", {})
            source_class = spec.get("storageClassName") or ""
            target_class = mapping.get(source_class, source_class)
            if target_class:
                spec["storageClassName"] = target_class
            if record is not None and record.get("origin") == ORIGIN:
                complete(record, body, self._snapshot_classes())
            if record is None or record.get("state") != SUCCEEDED:
                if record is not None and record.get("origin") == ORIGIN:
                    self._not_restored(item.namespace, item.name, record["reason"])
                item.prepared = body
                continue
            entry = VolumeEntry.from_json(record)
            entry.namespace, entry.state, entry.reason = item.namespace, PENDING, ""
            entry.bytes_done, entry.bytes_total = 0, int((entry.copy or {}).get("size") or 0)
            entry.storage_class = target_class
            self.entries[(item.namespace, item.name)] = entry
            gone_pvs.add(spec.pop("volumeName", None))
            if target_class and target_class not in classes:
                entry.method = ""
                self.fail(entry, f"the target cluster has no storage class {target_class}"
                          + (f" (mapped from {source_class})" if target_class != source_class
                             else "; map it to one the target has"))  # fmt: skip
            elif self._same_cluster_snapshot(entry):
                entry.method = "snapshot"
                spec["dataSource"] = {
                    "apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot",
                    "name": self._restored_snapshot_name(entry),
                }  # fmt: skip
            elif entry.copy:
                entry.method = "copy"
            else:
                entry.method = ""
                self.fail(entry, missing_source(entry.snapshot or {}, entry.driver))
            item.prepared = body
            self.report(entry)
        self._drop_replaced(plan, gone_pvs, records)
        for entry in self.entries.values():
            how = {"snapshot": "from its snapshot", "copy": "from its copy"}.get(entry.method)
            self.run.log(f"Volume {entry.key}: " + (f"comes back {how}." if how else entry.reason))

    def _not_restored(self, namespace: str, claim: str, reason: str) -> None:
        message = f"Volume {namespace}/{claim}: its data is not restored: {reason}."
        self.run.results.warning(message, namespace=namespace)
        self.run.log(message, "warning")

    def _same_cluster_snapshot(self, entry: VolumeEntry) -> bool:
        snap = entry.snapshot or {}
        if snap.get("origin") == ORIGIN:  # Velero left no content in the cluster to compare
            driver = f"/apis/storage.k8s.io/v1/csidrivers/{entry.driver}"
            try:
                return bool(snap.get("handle") and entry.driver and self.objects.find(driver))
            except ApiError:
                return False
        if not snap.get("kept") or not snap.get("content") or not snap.get("handle"):
            return False
        try:
            content = self.objects.find(content_path(snap["content"]))
        except ApiError:
            return False
        return (
            bool(content) and (content.get("status") or {}).get("snapshotHandle") == snap["handle"]
        )

    def _restored_snapshot_name(self, entry: VolumeEntry) -> str:
        return label_value(f"{entry.claim[:40]}-{self.operation}")[:63].rstrip("-.")

    def _drop_replaced(self, plan, gone_pvs: set, records: dict) -> None:
        """Leave out the backup's VolumeSnapshots and contents (recreated here) and the
        volumes of claims whose data comes back (provisioned anew)."""
        snaps = {(r["namespace"], (r.get("snapshot") or {}).get("name")) for r in records.values()}
        contents = {(r.get("snapshot") or {}).get("content") for r in records.values()}
        for group in plan.groups:
            before = len(group.items)
            if group.group_resource == VS:
                group.items = [i for i in group.items
                               if (i.source_namespace, i.name) not in snaps]  # fmt: skip
            elif group.group_resource == VSC:
                group.items = [i for i in group.items if i.name not in contents]
            elif group.group_resource == "persistentvolumes":
                group.items = [i for i in group.items if i.name not in gone_pvs]
            if len(group.items) != before:
                plan.notes.append(
                    f"Left out {before - len(group.items)} {group.group_resource}: the volume "
                    "restore provisions them anew."
                )
        plan.groups = [g for g in plan.groups if g.items]

    # 2. Apply -----------------------------------------------------------------------

    def before_group(self, group) -> list:
        """Create what the claims' snapshots need; return the items not to create
        (workloads mounting a failed claim), with the reason, as (item, reason)."""
        if group.group_resource == "persistentvolumeclaims" and not self.request.preview:
            for entry in self.entries.values():
                if entry.method == "snapshot" and entry.state == PENDING:
                    self._snapshot_source(entry)
        refused = []
        if group.group_resource in WORKLOADS:
            kept = []
            for item in group.items:
                failed = self._failed_claims(item)
                if failed:
                    refused.append((item, "not created: " + "; ".join(failed)))
                else:
                    kept.append(item)
                    if group.group_resource == "pods":
                        self._init_hook(item)
            group.items = kept
        return refused

    def _failed_claims(self, item) -> list[str]:
        obj = json.loads(item.data) if item.data else item.body()
        reasons = []
        for claim in sorted(mounted_claims(obj)):
            entry = self.entries.get((item.namespace, claim))
            if entry is not None and entry.state == FAILED:
                reasons.append(f"its volume {entry.key} was not restored ({entry.reason})")
        return reasons

    def _init_hook(self, item) -> None:
        body = item.body()
        container = hooks.init_container(body)
        if container is not None:
            spec = body.setdefault("spec", {})
            spec["initContainers"] = [container, *(spec.get("initContainers") or [])]
            item.prepared = body
        if hooks.pod_hook(body, hooks.POST_RESTORE):
            self.restored_pods.append(body | {"metadata": {**body.get("metadata", {}),
                                                           "namespace": item.namespace}})  # fmt: skip

    def _snapshot_source(self, entry: VolumeEntry) -> None:
        snap, name = entry.snapshot, self._restored_snapshot_name(entry)
        labels = {OPERATION_LABEL: self.operation}
        content = {
            "apiVersion": SNAPSHOT_API, "kind": "VolumeSnapshotContent",
            "metadata": {"name": f"{name}-content"[:253], "labels": labels},
            "spec": {
                "deletionPolicy": "Retain", "driver": entry.driver,
                "source": {"snapshotHandle": snap["handle"]},
                "volumeSnapshotClassName": snap.get("class"),
                "volumeSnapshotRef": {"name": name, "namespace": entry.namespace},
            },
        }  # fmt: skip
        snapshot = {
            "apiVersion": SNAPSHOT_API, "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": entry.namespace, "labels": labels},
            "spec": {"source": {"volumeSnapshotContentName": content["metadata"]["name"]}},
        }  # fmt: skip
        entry.state, entry.started = RUNNING, datetime.now(UTC)
        self.report(entry)
        try:
            self.objects.create(content_path(), content)
            self.objects.create(snapshot_path(entry.namespace), snapshot)
        except ApiError as exc:
            self.fail(entry, f"the snapshot could not be recreated: {exc}")

    def after_claims(self, created: set[tuple[str, str]]) -> None:
        """Fill each claim this restore created (``created``: (namespace, name)): wait
        for snapshot-made claims, send the copies. A claim that existed keeps its data."""
        for key, entry in self.entries.items():
            if entry.state == FAILED:
                continue
            if key not in created:
                entry.state, entry.reason = SKIPPED, "the claim existed already: its data is kept"
                entry.finished = datetime.now(UTC)
                self.report(entry)
                continue
            if entry.method == "snapshot":
                self._wait_bound(entry)
            elif entry.method == "copy":
                self._copy_in(entry)
            self.run.stop_here()

    def _wait_bound(self, entry: VolumeEntry) -> None:
        path = core_path(entry.namespace, "persistentvolumeclaims", entry.claim)

        def bound() -> tuple[bool, str]:
            claim = self.objects.find(path) or {}
            phase = (claim.get("status") or {}).get("phase", "")
            return phase == "Bound", f"claim {phase or 'missing'}"

        try:
            wait_for(f"The claim {entry.key}", bound, self.settings.snapshot_timeout,
                     self.run.should_stop, self.run.stop_here)  # fmt: skip
        except WaitTimeout as exc:
            self.fail(entry, f"{exc}; it was restored from snapshot {entry.snapshot.get('name')}")
            return
        self.succeed(entry)

    def _copy_in(self, entry: VolumeEntry) -> None:
        entry.state, entry.started = RUNNING, datetime.now(UTC)
        self.report(entry)
        copy = entry.copy
        mover = Mover(self.objects, self.mover_settings, self.run.should_stop)
        try:
            stream = self.copies.open(copy, entry.claim)
        except NotFound:
            self._refuse(entry, "its copy is missing from the location", None)
            return
        except StorageError as exc:
            self._refuse(entry, f"its copy could not be read: {exc}", None)
            return
        try:
            mover.start(entry.namespace, entry.claim, operation=self.operation, read_only=False)

            def progress(done: int) -> None:
                entry.bytes_done = done
                self.report(entry)

            size = mover.copy_in(stream, copy.get("sha256", ""), progress)
            entry.bytes_done = size
            self.succeed(entry)
            self.run.log(f"Volume {entry.key}: {size} bytes restored, sha256 matches.")
        except (MoveFailed, ApiError, StorageError) as exc:
            self._refuse(entry, str(exc), mover)
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            with contextlib.suppress(ApiError, ClusterUnreachable):
                mover.remove()

    def _refuse(self, entry: VolumeEntry, reason: str, mover) -> None:
        """The data cannot come back: the claim goes again, and its workloads stay out."""
        if mover is not None:
            with contextlib.suppress(ApiError, ClusterUnreachable):
                mover.remove()
        with contextlib.suppress(ApiError, ClusterUnreachable):
            self.objects.delete(core_path(entry.namespace, "persistentvolumeclaims", entry.claim))
        self.fail(entry, reason)

    # 4. Hooks and clean-up ------------------------------------------------------------

    def post_hooks(self) -> None:
        for pod in self.restored_pods:
            hook = hooks.pod_hook(pod, hooks.POST_RESTORE)
            meta = pod["metadata"]
            path = core_path(meta["namespace"], "pods", meta["name"])
            wait = hook.wait_timeout or self.settings.restore_wait_timeout

            def running(path=path) -> tuple[bool, str]:
                found = self.objects.find(path) or {}
                phase = (found.get("status") or {}).get("phase", "")
                return phase == "Running", phase or "missing"

            try:
                wait_for(f"Pod {meta['namespace']}/{meta['name']}", running, wait,
                         self.run.should_stop, self.run.stop_here)  # fmt: skip
                report = hooks.run_hook(self.kube, pod, hook, self.run.should_stop)
            except WaitTimeout as exc:
                report = hooks.HookReport(meta["namespace"], meta["name"], hook.container,
                                          hook.phase, json.dumps(list(hook.command)), None,
                                          str(exc), False, hook.fail_on_error)  # fmt: skip
            self._report_hook(report)
            text = hooks.describe(report)
            if report.ok:
                self.run.log(text)
            elif hook.fail_on_error:
                self.run.results.error(text, namespace=meta["namespace"])
                self.run.log(text, "error")
            else:
                self.run.results.warning(text, namespace=meta["namespace"])

    def cleanup(self) -> None:
        try:
            sweep_operation(self.objects, self.operation, wait=CLEANUP_WAIT)
        finally:
            self.copies.close()


def _gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)
