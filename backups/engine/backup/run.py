"""One backup of a cluster's resources into a location, in Velero's format.

``run_backup(request, progress=..., log=..., should_stop=...)`` takes a
``BackupRequest`` (the cluster's connection, the store, the options) and never
raises for a cluster or store failure: it returns a ``BackupOutcome``.

The flow:

1. Connect, read the version, discover the resource types, list namespaces.
2. Upload the log so far and ``velero-backup.json`` (phase InProgress).
3. Stream the archive into the store: paged concurrent LISTs
   (``collect.py``) -> tar records -> gzip -> the provider's multipart writer.
   Then the cluster-scoped objects the chosen namespaces need (``auto``), then
   the namespaces themselves.
4. Upload the resource list, results, the volume records (``volumeinfo`` has a
   record for every PV in the archive; the other lists are empty without disks), log,
   and ``velero-backup.json`` again with the final phase.

With ``include_disks``, the volume work (``volumes/backup.py``) runs around step 3:
hooks, snapshots and live copies before the archive (so that it holds the snapshots),
copies from snapshots after it. A volume that fails makes the backup PartiallyFailed
with that volume's reason; its temporary objects are always removed, and a backup that
fails or is cancelled also deletes the snapshots it kept.

A failed LIST of one resource type makes the backup PartiallyFailed with the
reason in results; an unreachable cluster or store makes it Failed. When the
archive upload fails, the writer aborts (no partial object is left) and the
engine still tries, for a few seconds, to record the Failed phase. When
``should_stop()`` says yes (asked between pages and batches), the upload is
aborted, every object of the backup is deleted, and the phase is Cancelled.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from backups.engine import control_plane
from backups.engine.backup.collect import (
    Batch,
    Collector,
    Fatal,
    Unit,
    UnitDone,
    binds_service_account,
)
from backups.engine.backup.namespaces import NamespacePlan, plan_namespaces
from backups.engine.backup.store_steps import (
    COMPLETED,
    FAILED,
    PARTIALLY_FAILED,
    BackupOutcome,
    StoreSteps,
)
from backups.engine.backup.volume_steps import BackupFailed, VolumeSteps
from backups.engine.filters import FilterError, Scope, build_scope, validate_selector
from backups.engine.inputs import BackupRequest
from backups.engine.job import Cancelled, Executor, ShouldStop, never
from backups.engine.kube.api import ClusterUnreachable, Kube, KubeError
from backups.engine.kube.client import KubeconfigError
from backups.engine.kube.discovery import Discovery, discover, server_version
from backups.engine.storage.base import StorageError
from backups.engine.velero import index
from backups.engine.velero.archive import ArchiveWriter
from backups.engine.velero.format import ResourceList, Results
from backups.engine.volumes.backup import VolumeBackup

logger = logging.getLogger(__name__)


def run_backup(
    request: BackupRequest,
    *,
    progress: Callable[[int, int, str], None],
    log: Callable[[str], None],
    should_stop: ShouldStop = never,
    volume: Callable | None = None,
    hook: Callable | None = None,
) -> BackupOutcome:
    """``volume(entry: VolumeEntry)`` is called as each volume moves (bytes done, result);
    ``hook(report: HookReport)`` once per hook that ran. Both on the caller's thread."""
    return BackupExecutor(request, progress, log, should_stop, volume, hook).execute()


def _ignore(_report) -> None:
    return None


class BackupExecutor(StoreSteps, VolumeSteps, Executor):
    def __init__(
        self, request: BackupRequest, progress, log, should_stop: ShouldStop = never,
        volume=None, hook=None,
    ):  # fmt: skip
        super().__init__(progress, log, should_stop)
        self.volume_cb = volume or _ignore
        self.hook_cb = hook or _ignore
        self.volumes: VolumeBackup | None = None
        self.request = request
        self.spec = request.spec
        self.name = request.name
        self.provider = request.store.provider
        self.layout = request.store.layout
        self.location_name = request.store.name
        self.started = datetime.now(UTC)
        self.expires = self.started + self.spec.ttl
        self.results = Results()
        self.resources = ResourceList()
        self.version: dict = {}
        self.per_type: Counter = Counter()
        self.size = 0
        self.sha256 = ""
        self.kube: Kube | None = None
        self.item_namespaces: set[str] = set()
        self.archived_volumes: list = []  # the PVs written, for volumeinfo
        self.finished: datetime | None = None

    # The run --------------------------------------------------------------------------

    def execute(self) -> BackupOutcome:
        try:
            validate_selector(self.spec.label_selector)
        except FilterError as exc:
            return self._outcome(FAILED, str(exc))
        try:
            self._run()
        except BackupFailed as exc:
            self._discard_volumes()
            return self._failed(str(exc))
        except Cancelled:
            self._discard_volumes()
            return self._cancelled()
        except Exception as exc:  # a bug: still end the backup Failed, with a reason
            logger.exception("backup %s stopped on an unexpected error", self.name)
            self._discard_volumes()
            return self._failed(
                f"The backup stopped on an unexpected error ({exc.__class__.__name__}: {exc})."
            )
        except BaseException:  # the caller stopping the job (its own signal): keep nothing
            self._discard_volumes()
            raise
        finally:
            if self.volumes is not None:
                self._volume_step(self.volumes.cleanup, quiet=True)
            if self.kube is not None:
                self.kube.close()
        phase = PARTIALLY_FAILED if self.results.errors else COMPLETED
        return self._outcome(phase, "")

    def _run(self) -> None:
        self.log(f"Backup {self.name} of cluster {self.request.cluster.name} started.")
        self.progress("Connecting to the cluster")
        discovery, scope, namespaces = self._prepare()
        self.stop_here()
        self.progress("Writing backup metadata")
        self._put_metadata("InProgress")
        if self.spec.include_disks:
            self.progress("Capturing volumes (hooks, snapshots, live copies)")
            self.volumes = VolumeBackup(
                self.kube, self.request, scope, self, self.volume_cb, self.hook_cb
            )
            self._volume_step(self.volumes.prepare)
            self._volume_step(self.volumes.capture)
            self.stop_here()
        self.progress("Backing up resources")
        self._write_archive(discovery, scope, namespaces)
        self.stop_here()
        if self.volumes is not None:
            self.progress("Copying volumes from their snapshots")
            self._volume_step(self.volumes.copy_from_snapshots)
            self.stop_here()
        self.progress("Uploading results")
        self._put_final_files()

    def _prepare(self) -> tuple[Discovery, Scope, NamespacePlan]:
        try:
            self.kube = Kube.connect(self.request.cluster)
            self.version = server_version(self.kube)
            self.log(f"Kubernetes {self.version.get('gitVersion', '?')} at {self.kube.server}.")
            self.progress("Discovering resource types")
            discovery = discover(self.kube)
        except (KubeconfigError, ClusterUnreachable) as exc:
            raise BackupFailed(str(exc)) from None
        except KubeError as exc:
            raise BackupFailed(f"{self.kube.server} refused discovery: {exc}.") from None
        for group_version, reason in discovery.failures:
            message = (
                f"The API group {group_version} could not be read ({reason}); "
                "its objects are not in the backup."
            )
            self.results.error(message)
            self.log(message, "error")
        scope, warnings = build_scope(self.spec, discovery.types)
        for warning in warnings:
            self.results.warning(warning)
        try:
            namespaces = plan_namespaces(self.kube, discovery, scope, self.results)
        except ClusterUnreachable as exc:
            raise BackupFailed(str(exc)) from None
        except KubeError as exc:
            raise BackupFailed(f"Listing namespaces failed: {exc}.") from None
        for name in namespaces.missing:
            self.log(f"Namespace {name} was chosen but does not exist in the cluster.", "error")
        listed = sum(1 for t in discovery.types if scope.wants_type(t))
        self.log(
            f"{len(discovery.types)} resource types served; {listed} to list "
            f"(namespaces: {namespaces.describe()}; cluster-wide resources: "
            f"{scope.cluster_resources}"
            + (f"; label selector {scope.selector!r}" if scope.selector else "")
            + ")."
        )
        note = control_plane.reference_only_note(t for t in discovery.types if scope.wants_type(t))
        if note:
            self.log(note)
        return discovery, scope, namespaces

    # Archive --------------------------------------------------------------------------

    def _write_archive(self, discovery: Discovery, scope: Scope, ns: NamespacePlan) -> None:
        key = self.layout.backup_file(self.name, "archive")
        mtime = int(self.started.timestamp())
        collector = None
        try:
            with self.provider.open_write(key, "application/gzip") as sink:
                archive = ArchiveWriter(sink, mtime=mtime)
                archive.add_version_file()
                rewrites = {}
                if self.volumes is not None:
                    rewrites["persistentvolumeclaims"] = self.volumes.claim_rewrite
                collector = Collector(self.kube, mtime=mtime, rewrites=rewrites)
                units = ns.units(discovery, scope)
                collector.submit(units)
                related = self._drain(collector, archive)
                if scope.related_cluster_items:
                    self.progress("Backing up cluster resources the namespaces need")
                    self._related(collector, archive, discovery, scope, related)
                self.progress("Backing up namespaces")
                self._namespaces(archive, ns, scope)
                self._snapshot_contents(archive, discovery, scope)
                self.size, self.sha256 = archive.finish()
            self._put("archive-index", index.encode_writer(archive))
        except StorageError as exc:
            if collector:
                collector.cancel()
            self.log(f"Uploading the archive failed: {exc}", "error")
            raise BackupFailed(f"Uploading the archive failed: {exc}") from None
        except BaseException:
            if collector:
                collector.cancel()
            raise
        collector.close()
        self.total = self.done
        self.progress(force=True)
        for gr, count in sorted(self.per_type.items()):
            if count:
                self.log(f"{gr}: {count} items")
        self.log(f"Archive written: {self.done} items, {self.size} bytes, sha256 {self.sha256}.")

    def _drain(self, collector: Collector, archive: ArchiveWriter) -> dict[str, set[str]]:
        """Write every batch; returns what related cluster objects were asked for."""
        related: dict[str, set[str]] = {}
        for event in collector.events():
            if isinstance(event, Batch):
                rt = event.unit.rtype
                archive.write_items(rt.gvk_key, event.items, event.names, event.records)
                self.resources.add(rt.gvk_key, event.names)
                self.done += event.count
                self.total += event.estimate
                self.per_type[rt.group_resource] += event.count
                self.item_namespaces |= event.namespaces
                self.archived_volumes.extend(event.volumes)
                if event.extras:
                    related.setdefault(rt.group_resource, set()).update(event.extras)
            elif isinstance(event, UnitDone) and event.error is not None:
                self._list_failed(event)
            elif isinstance(event, Fatal):
                collector.cancel()
                if isinstance(event.exc, ClusterUnreachable):
                    self.log(str(event.exc), "error")
                    raise BackupFailed(str(event.exc))
                raise event.exc
            self.progress()
            self.stop_here()
        return related

    def _list_failed(self, event: UnitDone) -> None:
        unit, exc = event.unit, event.error
        gr = unit.rtype.group_resource
        if exc.status == 404:
            # The type went away during the backup (a CRD deleted): nothing to lose.
            message = f"{gr} is no longer served by the cluster ({exc}); skipped."
            self.results.warning(message, namespace=unit.namespace, cluster=not unit.namespace)
            self.log(message, "warning")
            return
        if exc.status == 410:
            detail = "the list expired before all its pages were read (410 Gone); retry the backup"
        else:
            detail = str(exc)
        where = f" in namespace {unit.namespace}" if unit.namespace else ""
        message = f"Listing {gr}{where} failed: {detail}. Its objects are not in the backup."
        self.results.error(message, namespace=unit.namespace, cluster=not unit.namespace)
        self.log(message, "error")

    def _related(self, collector, archive, discovery: Discovery, scope: Scope, asked) -> None:
        """Cluster-scoped objects the chosen namespaces need, as Velero's null
        includeClusterResources backs them up: bound PVs, the CRDs of custom
        resources, cluster role bindings naming a service account and their roles."""
        units = []
        pvs = asked.get("persistentvolumeclaims", set())
        crds = {gr for gr, n in self.per_type.items() if n and "." in gr}
        accounts = asked.get("serviceaccounts", set())
        wanted = [
            ("persistentvolumes", pvs, None),
            ("customresourcedefinitions.apiextensions.k8s.io", crds, None),
            ("clusterrolebindings.rbac.authorization.k8s.io", None, accounts),
        ]
        for gr, names, subjects in wanted:
            rt = discovery.find(gr)
            if rt is None or not scope.wants_related(gr) or not (names or subjects):
                continue
            if subjects:
                units.append(Unit(rt, keep=binds_service_account(subjects), track=True))
            else:
                units.append(Unit(rt, keep_names=frozenset(names)))
        collector.submit(units)
        roles = self._drain(collector, archive).get(
            "clusterrolebindings.rbac.authorization.k8s.io", set()
        )
        rt = discovery.find("clusterroles.rbac.authorization.k8s.io")
        if roles and rt is not None and scope.wants_related(rt.group_resource):
            collector.submit([Unit(rt, keep_names=frozenset(roles))])
            self._drain(collector, archive)

    def _namespaces(self, archive: ArchiveWriter, ns: NamespacePlan, scope: Scope) -> None:
        if not scope.wants_namespace_objects():
            return
        names = ns.to_write(self.item_namespaces)
        records, written, made = ns.records(names, archive.mtime)
        if records:
            archive.write_items("v1/Namespace", made, written, records)
        self.resources.add("v1/Namespace", written)
        self.done += len(written)
        self.per_type["namespaces"] += len(written)
