"""One restore of a backup into a cluster (or a server-side dry run of it).

``run_restore(restore, provider, progress=..., log=..., record=...)`` reads its
options from the Restore row, the archive from ``restore.backup``, the target's
kubeconfig from ``restore.target_cluster``; it never saves the row and never
raises for a cluster or store failure: it returns a ``RestoreOutcome``.

The flow:

1. Download the archive into a temporary file, hashing it; check the sha256
   recorded at backup time, then read the whole tar.gz (headers and gzip CRC
   checked). A mismatch, corruption or truncation fails the restore here, before
   the cluster is touched.
2. Connect, discover the target's types, resolve the options, and plan
   (``restore_plan``): filters, namespace mapping, related cluster items, every
   item decided and grouped in Velero's priority order, before the first write.
3. Apply group by group (``restore_apply``): the items of a group in parallel;
   custom resources after their definitions are Established. Each item's outcome
   goes to ``record`` in batches, on the caller's thread, like every callback.
4. Write the restore's log, results and resource list to the location in
   Velero's layout (not for a preview).

With ``restore.is_preview`` every write is ``dryRun=All``: nothing changes, and
the outcomes (same values) say what the restore would do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from locations.layout import Layout
from locations.providers.base import NotFound, Provider, StorageError
from workspaces.kube import KubeconfigError

from .archive_reader import iter_archive, list_contents
from .discovery import discover, server_version
from .filters import FilterError
from .kubeapi import ClusterUnreachable, Kube, KubeError
from .restore_apply import (
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
from .restore_archive import ArchiveError, read_contents, spool
from .restore_options import build_options, check_options
from .restore_plan import CRD, Plan, item_path_key, plan_restore
from .restore_target import Target
from .velero import LogBuffer, Results, gz_json

logger = logging.getLogger(__name__)

COMPLETED, PARTIALLY_FAILED, FAILED_PHASE = "Completed", "PartiallyFailed", "Failed"
WORKERS = 24  # parallel requests within a group; the connection pool matches
PROGRESS_INTERVAL = 0.25
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
    phase: str  # Completed | PartiallyFailed | Failed
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
    restore,
    provider: Provider,
    *,
    progress: Callable[[int, int, str], None],
    log: Callable[[str], None],
    record: Callable[[list[ItemResult]], None],
) -> RestoreOutcome:
    return RestoreRun(restore, provider, progress, log, record).execute()


def backup_namespaces(provider: Provider, layout: Layout, backup_name: str) -> list[str]:
    """The namespaces a backup holds, from its resource list (no archive download);
    from the archive's paths when the list is missing. Raises StorageError."""
    try:
        listing = list_contents(provider, layout, backup_name)
    except NotFound:
        found = set()
        with provider.open_read(layout.backup_file(backup_name, "archive")) as stream:
            for path, _data in iter_archive(stream):
                parts = path.split("/")
                if len(parts) >= 5 and parts[0] == "resources" and parts[-3] == "namespaces":
                    found.add(parts[-2])
                elif len(parts) == 4 and parts[1] == "namespaces" and parts[2] == "cluster":
                    found.add(parts[3].removesuffix(".json"))
        return sorted(found)
    names = set(listing.get("v1/Namespace") or ())
    for key, entries in listing.items():
        if key != "v1/Namespace":
            names.update(entry.split("/", 1)[0] for entry in entries if "/" in entry)
    return sorted(names)


class RestoreRun:
    def __init__(self, restore, provider: Provider, progress, log, record):
        self.restore = restore
        self.provider = provider
        self._progress_cb, self._log_cb, self._record_cb = progress, log, record
        self.preview = bool(restore.is_preview)
        self.logbuf = LogBuffer()
        self.results = Results()
        self.counts: Counter = Counter()
        self.resource_list: dict[str, list[str]] = defaultdict(list)
        self.batch: list[ItemResult] = []
        self.done = self.total = 0
        self.phase_text = "Starting"
        self.kube: Kube | None = None
        self.layout: Layout | None = None
        self.logged_failures = 0
        self.spooled = None
        self._last_progress = self._last_record = 0.0

    # Reporting (the caller's thread only) -------------------------------------------------

    def log(self, message: str, level: str = "info") -> None:
        line = self.logbuf.add(level.upper(), message)
        try:
            self._log_cb(line)
        except Exception:  # a broken callback must not break the restore
            logger.exception("restore log callback failed")

    def progress(self, phase: str | None = None, force: bool = False) -> None:
        if phase:
            self.phase_text, force = phase, True
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            try:
                self._progress_cb(self.done, max(self.total, self.done), self.phase_text)
            except Exception:
                logger.exception("restore progress callback failed")

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
        try:
            self._run()
        except RestoreFailed as exc:
            error = str(exc)
        except Exception as exc:  # a bug: still end the restore Failed, with a reason
            logger.exception("restore %s stopped on an unexpected error", self.restore.name)
            error = f"The restore stopped on an unexpected error ({exc.__class__.__name__}: {exc})."
        finally:
            self.flush(force=True)
            if self.kube is not None:
                self.kube.close()
            if self.spooled is not None:
                self.spooled.close()
        if error:
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
        if not self.preview:
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
        restore = self.restore
        backup, cluster = restore.backup, restore.target_cluster
        kind = "Preview (server-side dry run)" if self.preview else "Restore"
        self.log(f"{kind} {restore.name} of backup {restore.backup_name} into cluster "
                 f"{restore.target_cluster_name} started.")  # fmt: skip
        if backup is None:
            raise RestoreFailed("The backup of this restore no longer exists.")
        if cluster is None:
            raise RestoreFailed("The target cluster of this restore no longer exists.")
        try:
            check_options(restore)  # before a long download
        except FilterError as exc:
            raise RestoreFailed(str(exc)) from None
        self.layout = Layout(backup.location.prefix)
        self.progress("Downloading the archive")
        key = self.layout.backup_file(backup.name, "archive")
        try:
            self.spooled, size, sha = spool(self.provider, key, backup.sha256)
            self.log(f"Archive downloaded: {size} bytes, sha256 {sha}"
                     + (" (matches the backup)." if backup.sha256 else "."))  # fmt: skip
            self.progress("Reading the archive")
            contents = read_contents(self.spooled)
        except ArchiveError as exc:
            raise RestoreFailed(str(exc)) from None
        self.log(f"Archive read: {len(contents.items)} items (format {contents.format_version}).")
        plan, target = self._plan(cluster.kubeconfig, contents)
        del contents
        self._apply(plan, target)

    def _plan(self, kubeconfig: str, contents) -> tuple[Plan, Target]:
        self.progress("Connecting to the cluster")
        try:
            self.kube = Kube(kubeconfig, pool_size=WORKERS + 4)
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
                self.restore, discovery.types, contents.group_resources()
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
        for note in plan.notes:
            self.log(note)
        self.total = plan.total
        types = ", ".join(f"{g.group_resource} {len(g.items)}" for g in plan.groups)
        self.log(f"Plan: {plan.total} items in {len(plan.groups)} types ({types or 'none'}).")
        return plan, Target(self.kube, discovery)

    def _apply(self, plan: Plan, target: Target) -> None:
        stop = threading.Event()
        planned = {(g.group_resource, i.namespace, i.name) for g in plan.groups for i in g.items}
        crd_types = custom_types(plan.groups)
        with worker_pool(WORKERS) as pool:
            applier = Applier(
                target,
                pool,
                workers=WORKERS,
                dry_run=self.preview,
                update=self.restore.existing_policy == "update",
                planned=planned,
                stop=stop,
            )
            try:
                for group in plan.groups:
                    self.progress(f"Restoring {group.group_resource}")
                    applied = self._run_group(applier, group)
                    if group.group_resource == CRD:
                        for problem in applier.wait_for_crds(applied, crd_types):
                            self.results.warning(problem, cluster=True)
                            self.log(problem, "warning")
            finally:
                stop.set()  # whatever happened, no worker takes another item
        self.progress("Writing results")

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
        api_version = applied.api_version or item.api_version
        kind = applied.kind or item.kind
        self.resource_list[f"{api_version}/{kind}"].append(
            f"{item_path_key(item)}({VELERO_ACTION[outcome]})"
        )

    def _write_artefacts(self) -> None:
        """The restore's log, results and resource list, in Velero's layout (best effort)."""
        if self.layout is None:
            backup = self.restore.backup
            if backup is None:
                return
            self.layout = Layout(backup.location.prefix)
        name = self.restore.name
        files = {
            "results": gz_json(self.results.as_dict()),
            "resource-list": gz_json({k: sorted(v) for k, v in self.resource_list.items()}),
            "logs": self.logbuf.gz(),
        }
        try:
            for kind, data in files.items():
                key = self.layout.restore_file(name, kind)
                self.provider.put_bytes(key, data, "application/gzip")
        except StorageError as exc:
            self.log(f"Writing the restore's results to the location failed: {exc}", "warning")
