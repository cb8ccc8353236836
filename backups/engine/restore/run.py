"""One restore of a backup into a cluster (or a server-side dry run of it).

``run_restore(request, progress=..., log=..., record=..., should_stop=...)`` takes
a ``RestoreRequest`` (the backup's store and name, the target's connection, the
options) and never raises for a cluster or store failure: it returns a
``RestoreOutcome``. ``should_stop()`` is asked between items and groups: a
cancelled restore stops there (what was applied stays applied) and writes nothing
to the store.

The flow:

1. Download the archive into a temporary file, hashing it; check the sha256
   recorded at backup time, then read the whole tar.gz (headers and gzip CRC
   checked). A mismatch, corruption or truncation fails the restore here, before
   the cluster is touched.
2. Connect, discover the target's types, resolve the options, and plan
   (``plan.py``): filters, namespace mapping, related cluster items, every
   item decided and grouped in Velero's priority order, before the first write.
3. Apply group by group (``apply.py``): the items of a group in parallel;
   custom resources after their definitions are Established. Each item's outcome
   goes to ``record`` in batches, on the caller's thread, like every callback.
4. Write the restore's log, results and resource list to the location in
   Velero's layout (not for a preview).

With ``request.preview`` every write is ``dryRun=All``: nothing changes, and
the outcomes (same values) say what the restore would do.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from backups.engine.filters import FilterError
from backups.engine.inputs import RestoreRequest
from backups.engine.job import CANCELLED, Cancelled, Executor, ShouldStop, never
from backups.engine.kube.api import ClusterUnreachable, Kube, KubeError
from backups.engine.kube.client import KubeconfigError
from backups.engine.kube.discovery import discover, server_version
from backups.engine.restore.apply import (
    CREATED,
    FAILED,
    SKIPPED_EQUAL,
    SKIPPED_EXISTS,
    UPDATED,
    Applied,
    Applier,
    custom_types,
    worker_pool,
)
from backups.engine.restore.archive import ArchiveError, read_contents, spool
from backups.engine.restore.chosen import read_chosen
from backups.engine.restore.options import archive_keep, build_options, check_options
from backups.engine.restore.plan import CRD, Plan, item_path_key, plan_restore
from backups.engine.restore.resource_list import resource_list_gz
from backups.engine.restore.target import Target
from backups.engine.storage.base import StorageError
from backups.engine.velero.format import Results, gz_json
from backups.engine.volumes.restore import VolumeRestore

logger = logging.getLogger(__name__)

COMPLETED, PARTIALLY_FAILED, FAILED_PHASE = "Completed", "PartiallyFailed", "Failed"
WORKERS = 24  # parallel requests within a group; the connection pool matches
RECORD_INTERVAL = 0.5
RECORD_BATCH = 500
LOGGED_FAILURES = 50  # failures logged one by one; the rest are counted (all are recorded)
VELERO_ACTION = {
    CREATED: "created",
    UPDATED: "updated",
    SKIPPED_EQUAL: "skipped",
    SKIPPED_EXISTS: "skipped",
    FAILED: "failed",
}


@dataclass
class ItemResult:
    resource: str  # group-resource, e.g. deployments.apps
    namespace: str  # the target namespace ("" for cluster-scoped objects)
    name: str
    outcome: str  # a RestoreItem.Outcome value
    message: str


@dataclass
class RestoreOutcome:
    phase: str  # Completed | PartiallyFailed | Failed | Cancelled
    error: str
    created: int
    updated: int
    skipped: int
    failed: int
    warnings: int
    total: int


class RestoreFailed(Exception):
    """Stops the restore; the message is the reason shown to people."""


def run_restore(
    request: RestoreRequest,
    *,
    progress: Callable[[int, int, str], None],
    log: Callable[[str], None],
    record: Callable[[list[ItemResult]], None],
    should_stop: ShouldStop = never,
    volume: Callable | None = None,
    hook: Callable | None = None,
) -> RestoreOutcome:
    """``volume(entry)`` and ``hook(report)`` as for ``run_backup``."""
    return RestoreExecutor(request, progress, log, record, should_stop, volume, hook).execute()


class RestoreExecutor(Executor):
    def __init__(
        self, request: RestoreRequest, progress, log, record, should_stop=never, volume=None,
        hook=None,
    ):  # fmt: skip
        super().__init__(progress, log, should_stop)
        self.volume_cb = volume or (lambda _entry: None)
        self.hook_cb = hook or (lambda _report: None)
        self.volumes: VolumeRestore | None = None
        self.created_claims: set[tuple[str, str]] = set()
        self.request = request
        self.provider = request.store.provider
        self.layout = request.store.layout
        self._record_cb = record
        self.preview = request.preview
        self.results = Results()
        self.counts: Counter = Counter()
        self.plan: Plan | None = None
        self.batch: list[ItemResult] = []
        self.kube: Kube | None = None
        self.logged_failures = 0
        self.spooled = None
        self.contents = None
        self._last_record = 0.0

    # Reporting (the caller's thread only) -------------------------------------------------

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.batch and (
            force or len(self.batch) >= RECORD_BATCH or now - self._last_record >= RECORD_INTERVAL
        ):
            batch, self.batch, self._last_record = self.batch, [], now
            try:
                self._record_cb(batch)
            except Exception:
                logger.exception("restore record callback failed")

    # The run ------------------------------------------------------------------------------

    def execute(self) -> RestoreOutcome:
        error = ""
        cancelled = False
        try:
            self._run()
        except RestoreFailed as exc:
            error = str(exc)
        except Cancelled:
            cancelled = True
        except Exception as exc:  # a bug: still end the restore Failed, with a reason
            logger.exception("restore %s stopped on an unexpected error", self.request.name)
            error = f"The restore stopped on an unexpected error ({exc.__class__.__name__}: {exc})."
        finally:
            self.flush(force=True)
            if self.volumes is not None and not self.preview:
                with contextlib.suppress(KubeError):
                    self.volumes.cleanup()
            if self.kube is not None:
                self.kube.close()
            if self.spooled is not None:
                self.spooled.close()
            if self.contents is not None:
                self.contents.close()
        if cancelled:
            phase = CANCELLED
            self.log(f"Restore cancelled: {self.summary()}.", "warning")
        elif error:
            self.results.error(error)
            self.log(f"Restore Failed: {error}", "error")
            phase = FAILED_PHASE
        else:
            phase = PARTIALLY_FAILED if self.counts[FAILED] or self.results.errors else COMPLETED
            self.log(
                f"Restore {phase}{' (preview)' if self.preview else ''}: {self.summary()}; "
                f"{self.results.warnings} warnings."
            )
        self.progress(phase, force=True)
        if not self.preview and not cancelled:
            self._write_artefacts()
        return RestoreOutcome(
            phase=phase,
            error=error,
            created=self.counts[CREATED],
            updated=self.counts[UPDATED],
            skipped=self.counts[SKIPPED_EQUAL] + self.counts[SKIPPED_EXISTS],
            failed=self.counts[FAILED],
            warnings=self.results.warnings,
            total=self.total,
        )

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c[CREATED]} created, {c[UPDATED]} updated, {c[SKIPPED_EQUAL]} skipped (equal), "
            f"{c[SKIPPED_EXISTS]} skipped (differ), {c[FAILED]} failed, of {self.total}"
        )

    def _run(self):
        request = self.request
        kind = "Preview (server-side dry run)" if self.preview else "Restore"
        self.log(f"{kind} {request.name} of backup {request.backup_name} into cluster "
                 f"{request.cluster.name} started.")  # fmt: skip
        try:
            check_options(request.spec)  # before a long download
        except FilterError as exc:
            raise RestoreFailed(str(exc)) from None
        self.progress("Downloading the archive")
        key = self.layout.backup_file(request.backup_name, "archive")
        try:
            found = read_chosen(self.provider, self.layout, request.backup_name, request.spec,
                                request.backup_sha256, archive_keep(request.spec))  # fmt: skip
            if found is not None:  # a granular restore, through the archive's index
                self.spooled, contents = found.spooled, found.contents
                self.log(found.describe())
            else:
                self.spooled, size, sha = spool(self.provider, key, request.backup_sha256)
                self.log(f"Archive downloaded: {size} bytes, sha256 {sha}"
                         + (" (matches the backup)." if request.backup_sha256 else "."))  # fmt: skip
                self.progress("Reading the archive")
                contents = read_contents(self.spooled, archive_keep(request.spec))
        except ArchiveError as exc:
            raise RestoreFailed(str(exc)) from None
        self.contents = contents  # its item file is removed when the restore ends
        self.log(f"Archive read: {len(contents.items)} items (format {contents.format_version}).")
        self.stop_here()
        plan, target = self._plan(contents)
        contents.items.forget()  # the plan's items know where their bytes are
        del contents
        self.plan = plan  # its items carry their outcome, for the resource list
        self._apply(plan, target)

    def _plan(self, contents) -> tuple[Plan, Target]:
        self.progress("Connecting to the cluster")
        try:
            self.kube = Kube.connect(self.request.cluster, pool_size=WORKERS + 4)
            version = server_version(self.kube)
            self.log(f"Kubernetes {version.get('gitVersion', '?')} at {self.kube.server}.")
            discovery = discover(self.kube)
        except (KubeconfigError, ClusterUnreachable) as exc:
            raise RestoreFailed(str(exc)) from None
        except KubeError as exc:
            raise RestoreFailed(f"{self.kube.server} refused discovery: {exc}.") from None
        for group_version, reason in discovery.failures:
            self.results.warning(f"The API group {group_version} could not be read ({reason}).")
        try:
            options, warnings = build_options(
                self.request, discovery.types, contents.group_resources()
            )
        except FilterError as exc:
            raise RestoreFailed(str(exc)) from None
        for warning in warnings:
            self.results.warning(warning)
            self.log(warning, "warning")
        self.progress("Planning")
        try:
            plan = plan_restore(contents, options)
        except ValueError as exc:
            raise RestoreFailed(f"The archive holds an item that is not JSON ({exc}).") from None
        if self.request.spec.restore_pvs:
            self.volumes = VolumeRestore(self.kube, self.request, self, self.volume_cb,
                                         self.hook_cb)  # fmt: skip
            try:
                self.volumes.prepare(plan)
            except KubeError as exc:
                raise RestoreFailed(f"Preparing the volumes failed: {exc}") from None
            except StorageError as exc:
                raise RestoreFailed(f"Reading the volume records failed: {exc}") from None
        for note in plan.notes:
            self.log(note)
        self.total = plan.total
        types = ", ".join(f"{g.group_resource} {len(g.items)}" for g in plan.groups)
        self.log(f"Plan: {plan.total} items in {len(plan.groups)} types ({types or 'none'}).")
        return plan, Target(self.kube, discovery)

    def _apply(self, plan: Plan, target: Target) -> None:
        stop = threading.Event()
        # What the preview may assume exists: the service accounts the restore creates
        # (the only kind a dry run's refusals are checked against).
        planned = {
            (g.group_resource, i.namespace, i.name)
            for g in plan.groups if g.group_resource == "serviceaccounts" for i in g.items
        }  # fmt: skip
        crd_types = custom_types(plan.groups)
        with worker_pool(WORKERS) as pool:
            applier = Applier(
                target,
                pool,
                workers=WORKERS,
                dry_run=self.preview,
                update=self.request.spec.existing_policy == "update",
                planned=planned,
                stop=stop,
            )
            try:
                for group in plan.groups:
                    self.stop_here()
                    self.progress(f"Restoring {group.group_resource}")
                    self._volumes_before(group)
                    applied = self._run_group(applier, group)
                    self._volumes_after(group)
                    if group.group_resource == CRD:
                        for problem in applier.wait_for_crds(applied, crd_types):
                            self.results.warning(problem, cluster=True)
                            self.log(problem, "warning")
            finally:
                stop.set()  # whatever happened, no worker takes another item
        if self.volumes is not None and not self.preview:
            self.progress("Running post-restore hooks")
            self._volume_step(self.volumes.post_hooks)
        self.progress("Writing results")

    def _volumes_before(self, group) -> None:
        if self.volumes is None:
            return
        for item, reason in self._volume_step(lambda: self.volumes.before_group(group)):
            self._handle(Applied(item, FAILED, reason))

    def _volumes_after(self, group) -> None:
        if self.volumes is not None and not self.preview:
            if group.group_resource == "persistentvolumeclaims":
                self.progress("Restoring volume data")
                self._volume_step(lambda: self.volumes.after_claims(self.created_claims))

    def _volume_step(self, step):
        try:
            return step()
        except ClusterUnreachable as exc:
            raise RestoreFailed(f"The restore stopped: {exc}") from None
        except KubeError as exc:
            raise RestoreFailed(f"The volume restore stopped: {exc}.") from None

    def _run_group(self, applier: Applier, group) -> list[Applied]:
        before = Counter(self.counts)
        kept = []
        started = time.monotonic()
        self.log(f"{group.group_resource}: restoring {len(group.items)} items.")
        try:
            for applied in applier.run_group(group):
                if isinstance(applied, str):
                    self.log(applied)
                elif applied is not None:
                    self._handle(applied)
                    if group.group_resource == CRD:
                        kept.append(applied)
                self.progress()
                self.flush()
                self.stop_here()
        except ClusterUnreachable as exc:
            raise RestoreFailed(
                f"The restore stopped: {exc} {self.done} of {self.total} items were done."
            ) from None
        counts = self.counts - before
        done = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in sorted(counts.items()))
        took = time.monotonic() - started
        self.log(f"{group.group_resource}: {len(group.items)} items ({done}) in {took:.1f} s.")
        return kept

    def _handle(self, applied: Applied) -> None:
        item, outcome = applied.item, applied.outcome
        if item.group_resource == "persistentvolumeclaims" and outcome == CREATED:
            self.created_claims.add((item.namespace, item.name))
        self.counts[outcome] += 1
        self.done += 1
        self.batch.append(
            ItemResult(item.group_resource, item.namespace, item.name, outcome, applied.message)
        )
        where = f"{item.group_resource} {item_path_key(item)}"
        if outcome == FAILED:
            self.results.error(f"{where}: {applied.message}", item.namespace, not item.namespace)
            if self.logged_failures < LOGGED_FAILURES:
                self.log(f"Failed: {where}: {applied.message}", "error")
            elif self.logged_failures == LOGGED_FAILURES:
                self.log("More items failed; every failure is in the results.", "error")
            self.logged_failures += 1
        elif applied.warning:
            self.results.warning(f"{where}: {applied.message}", item.namespace, not item.namespace)
        item.action = VELERO_ACTION[outcome]  # for the resource list
        api_version, kind = applied.api_version or item.api_version, applied.kind or item.kind
        if (api_version, kind) != (item.api_version, item.kind):
            item.served_as = f"{api_version}/{kind}"

    def _write_artefacts(self) -> None:
        """The restore's log, results and resource list, in Velero's layout (best effort)."""
        name = self.request.name
        files = {
            "results": gz_json(self.results.as_dict()),
            "resource-list": resource_list_gz(self.plan),
            "logs": self.logbuf.gz(),
        }
        try:
            for kind, data in files.items():
                key = self.layout.restore_file(name, kind)
                self.provider.put_bytes(key, data, "application/gzip")
        except StorageError as exc:
            self.log(f"Writing the restore's results to the location failed: {exc}", "warning")
