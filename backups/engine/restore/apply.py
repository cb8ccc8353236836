"""Creating a plan's objects in the target cluster: raw JSON, parallel within a group.

``Applier.run_group(group)`` creates the items of one group on a pool of worker
threads (bounded: Python must bound its own concurrency, and the client's
connection pool is sized to match) and yields each item's ``Applied`` as it
completes, so that the caller's thread does all reporting. Per item:

* POST the sanitized object (``dryRun=All`` in a preview). 201: created.
* 409 AlreadyExists (or any refusal while an object of that name exists, such as
  a NodePort "already allocated" to it): GET it and compare
  (``sanitize.differences``). Equal: skipped_equal. Different: policy
  ``none`` leaves it (skipped_exists, with the differing paths), ``update`` sends
  a JSON merge patch of the backup's content (updated).
* Anything else: failed, with the API server's own message.
* Transport errors and 429/5xx answers are retried a few times; a cluster that
  stops answering stops the restore (``ClusterUnreachable``).

A namespace that exists but is being deleted is waited for, then created again.
After the CRD group, ``wait_for_crds`` waits until each restored definition is
Established and refreshes discovery, so that its custom resources find their
endpoint. A preview cannot create namespaces or definitions, so what would go
into them is predicted "created" without a server check, and says so.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from backups.engine.kube.discovery import ResourceType
from backups.engine.restore import bindings
from backups.engine.restore.modifiers import ModifierError
from backups.engine.restore.plan import CRD, Group, PlannedItem
from backups.engine.restore.sanitize import describe_paths, differences, merge_patch
from backups.engine.restore.target import MERGE_PATCH, Response, Target

CREATED, UPDATED = "created", "updated"
SKIPPED_EQUAL, SKIPPED_EXISTS, FAILED = "skipped_equal", "skipped_exists", "failed"
NOT_SERVED_RETRIES = 20  # a definition just Established: its endpoint can lag a moment
TERMINATING_TIMEOUT = 600.0  # how long to wait for a namespace being deleted (as Velero)
CRD_TIMEOUT = 60.0
_SA_LOOKUP = re.compile(r"error looking up service account ([^/\s]+)/([^:\s]+)")


@dataclass(slots=True)
class Applied:
    item: PlannedItem
    outcome: str
    message: str = ""
    warning: bool = False
    api_version: str = ""
    kind: str = ""


class Applier:
    def __init__(
        self,
        target: Target,
        pool,
        *,
        workers: int,
        dry_run: bool,
        update: bool,
        planned: set[tuple[str, str, str]],  # the service accounts the plan creates
        stop: threading.Event,
    ):
        self.target = target
        self.pool = pool
        self.workers = workers
        self.dry_run = dry_run
        self.update = update
        self.planned = planned
        self.stop = stop
        self.failed_namespaces: dict[str, str] = {}
        self.pending_namespaces: set[str] = set()  # preview: would be created
        self.unserved_types: set[str] = set()  # preview: definitions would be created
        self.notices: queue.SimpleQueue = queue.SimpleQueue()  # log lines from workers
        self._endpoints: dict[tuple[str, str], ResourceType | None] = {}
        self._lock = threading.Lock()

    # The group ---------------------------------------------------------------------------

    def run_group(self, group: Group, tick: float = 0.25) -> Iterator[Applied | str | None]:
        """Each item's Applied as it completes, a worker's notice (a log line) as it
        comes, and None every ``tick`` seconds without either. Raises
        ClusterUnreachable when the cluster stops answering."""
        results: queue.SimpleQueue = queue.SimpleQueue()
        pending = iter(group.items)
        lock = threading.Lock()
        done_marker = object()

        def work() -> None:
            try:
                while not self.stop.is_set():
                    with lock:
                        item = next(pending, None)
                    if item is None:
                        break
                    results.put(self.apply(item))
            except BaseException as exc:  # ClusterUnreachable, or a bug: stop the restore
                self.stop.set()
                results.put(exc)
            finally:
                results.put(done_marker)

        running = min(self.workers, len(group.items))
        for _ in range(running):
            self.pool.submit(work)
        failure = None
        while running:
            while not self.notices.empty():
                yield self.notices.get()
            try:
                result = results.get(timeout=tick)
            except queue.Empty:
                yield None
                continue
            if result is done_marker:
                running -= 1
            elif isinstance(result, BaseException):
                failure = failure or result
            else:
                yield result
        if failure is not None:
            raise failure

    # One item ----------------------------------------------------------------------------

    def _resolve(self, item: PlannedItem) -> tuple[ResourceType | None, dict, list[str], str]:
        """(endpoint, body, notes, error): the target's type for the item, at the main
        copy's version or at another version the archive holds; the object to create
        and what the restore changed in it (``PlannedItem.prepare``)."""
        key = (item.group_resource, item.api_version)
        with self._lock:
            known = key in self._endpoints
            rt = self._endpoints.get(key)
        if not known:
            rt = self.target.endpoint(*key)
            with self._lock:
                self._endpoints[key] = rt
        try:
            if rt is not None:
                return rt, *item.prepare(), ""
            for folder, data in sorted((item.alternates or {}).items()):
                version = folder.removesuffix("-preferredversion")
                group = item.group_resource.partition(".")[2]
                alternate = self.target.endpoint(item.group_resource, f"{group}/{version}")
                if alternate is not None:
                    return alternate, *item.prepare(data), ""
        except ModifierError as exc:
            return None, {}, [], str(exc)
        served = self.target.served_versions(item.group_resource)
        return (
            None,
            {},
            [],
            f"The backup holds it as {item.api_version or '?'}, which the cluster does not "
            + (f"serve (it serves {', '.join(served)})." if served else "serve at all."),
        )

    def apply(self, item: PlannedItem) -> Applied:
        if item.namespace in self.failed_namespaces:
            return Applied(item, FAILED, self.failed_namespaces[item.namespace])
        if item.group_resource in self.unserved_types or item.namespace in self.pending_namespaces:
            why = (
                f"its namespace {item.namespace} is created by this restore"
                if item.namespace in self.pending_namespaces
                else "its CustomResourceDefinition is created by this restore"
            )
            if item.namespace in self.pending_namespaces and _made_by_cluster(item):
                return Applied(
                    item,
                    SKIPPED_EQUAL,
                    "Would exist already (made by the cluster: its controllers create a "
                    "default ServiceAccount in every new namespace).",
                )
            try:  # what the restore will change in it, as the restore will
                notes = item.prepare()[1]
            except ModifierError as exc:
                return Applied(item, FAILED, str(exc))
            predicted = f"Would be created (not checked by the server: {why})."
            return Applied(item, CREATED, " ".join((predicted, *notes)))
        rt, body, notes, error = self._resolve(item)
        if rt is None:
            return Applied(item, FAILED, error)
        result = self._create(item, rt, body)
        result.api_version, result.kind = rt.api_version, rt.kind or item.kind
        if notes:
            result.message = " ".join(filter(None, (result.message, *notes)))
        if item.group_resource == "namespaces" and result.outcome == FAILED:
            with self._lock:
                self.failed_namespaces[item.name] = (
                    f"Its namespace {item.name} could not be restored: {result.message}"
                )
        return result

    def _query(self) -> dict | None:
        return {"dryRun": "All"} if self.dry_run else None

    def _create(self, item: PlannedItem, rt: ResourceType, body: dict) -> Applied:
        collection = rt.list_path(item.namespace or None)
        path = f"{collection}/{item.name}"
        retried_not_served = 0
        while True:
            response = self.target.request("POST", collection, body, self._query())
            if response.ok:
                if item.group_resource == "namespaces" and self.dry_run:
                    with self._lock:
                        self.pending_namespaces.add(item.name)
                return Applied(item, CREATED)
            if (
                response.status == 404
                and response.reason == "NotFound"
                and not response.doc().get("details")
            ):
                # "the server could not find the requested resource": the type's endpoint
                # is not served yet (a definition just Established)
                if retried_not_served < NOT_SERVED_RETRIES:
                    retried_not_served += 1
                    time.sleep(0.5)
                    continue
            if response.status == 409 or response.status in (400, 403, 422):
                live = self.target.request("GET", path)
                if live.ok:
                    return self._existing(item, path, body, live.doc())
            return self._refused(item, response)

    def _refused(self, item: PlannedItem, response: Response) -> Applied:
        message = response.describe()
        found = _SA_LOOKUP.search(message)
        if self.dry_run and found and ("serviceaccounts", *found.groups()) in self.planned:
            return Applied(
                item,
                CREATED,
                f"Would be created (not fully checked: its service account {found.group(2)} "
                "is created by this restore).",
            )
        return Applied(item, FAILED, message)

    def _existing(self, item: PlannedItem, path: str, body: dict, live: dict) -> Applied:
        meta = live.get("metadata") or {}
        if item.group_resource == "namespaces" and meta.get("deletionTimestamp"):
            return self._terminating(item, path, body)
        if meta.get("deletionTimestamp"):
            return Applied(
                item, FAILED, "It exists and is being deleted; restore again once it is gone."
            )
        paths = differences(item.group_resource, body, live)
        if not paths:
            return Applied(item, SKIPPED_EQUAL, "Already exists and matches the backup.")
        subjects = bindings.needs_copy(item.group_resource, item.options, item.data)
        if subjects:
            return bindings.apply_copy(self, item, path, body, subjects)
        if not self.update:
            return Applied(
                item,
                SKIPPED_EXISTS,
                f"Already exists and differs from the backup at {describe_paths(paths)}; "
                "left unchanged (existing-resource policy: none).",
                warning=True,
            )
        patch = merge_patch(item.group_resource, body, live)
        response = self.target.request("PATCH", path, patch, self._query(), MERGE_PATCH)
        if response.ok:
            verb = "Would be patched" if self.dry_run else "Patched"
            return Applied(item, UPDATED, f"{verb} to match the backup at {describe_paths(paths)}.")
        return Applied(
            item,
            FAILED,
            f"It differs at {describe_paths(paths)}; patching it failed: " + response.describe(),
        )

    def _terminating(self, item: PlannedItem, path: str, body: dict) -> Applied:
        if self.dry_run:
            with self._lock:
                self.pending_namespaces.add(item.name)
            return Applied(
                item, CREATED, "Would be created once the namespace being deleted is gone."
            )
        self.notices.put(
            f"Namespace {item.name} is being deleted; waiting for it to be gone before "
            f"restoring it (at most {int(TERMINATING_TIMEOUT)} seconds)."
        )
        deadline = time.monotonic() + TERMINATING_TIMEOUT
        while time.monotonic() < deadline and not self.stop.is_set():
            response = self.target.request("GET", path)
            if response.status == 404:
                created = self.target.request("POST", path.rsplit("/", 1)[0], body)
                if created.ok:
                    return Applied(item, CREATED, "Created after the old namespace was deleted.")
                return Applied(item, FAILED, created.describe())
            time.sleep(1.0)
        return Applied(
            item,
            FAILED,
            f"The namespace {item.name} is still being deleted after "
            f"{int(TERMINATING_TIMEOUT)} seconds; restore again once it is gone.",
        )

    # Definitions -------------------------------------------------------------------------

    def wait_for_crds(self, applied: list[Applied], custom_types: set[str]) -> list[str]:
        """Wait until restored definitions are Established; refresh discovery. Returns
        problems, one sentence each. In a preview, records which types are not served."""
        problems: list[str] = []
        if self.dry_run:
            with self._lock:
                self.unserved_types = {
                    gr for gr in custom_types if self.target.discovery.find(gr) is None
                }
            return problems
        names = [a.item.name for a in applied if a.outcome != FAILED]
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        deadline = time.monotonic() + CRD_TIMEOUT
        for name in names:
            while True:
                doc = self.target.request("GET", base + name).doc()
                conditions = {
                    c.get("type"): c.get("status")
                    for c in (doc.get("status") or {}).get("conditions") or ()
                }
                if conditions.get("Established") == "True":
                    self._wait_served(doc, deadline)
                    break
                if time.monotonic() > deadline:
                    problems.append(
                        f"The CustomResourceDefinition {name} was not Established within "
                        f"{int(CRD_TIMEOUT)} seconds; its custom resources may fail."
                    )
                    break
                time.sleep(0.25)
        if any(self.target.discovery.find(gr) is None for gr in custom_types):
            self.target.refresh()
            with self._lock:
                self._endpoints.clear()
        return problems

    def _wait_served(self, crd: dict, deadline: float) -> None:
        """An Established definition's endpoint can take a moment to be served."""
        spec = crd.get("spec") or {}
        group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
        versions = [v.get("name") for v in spec.get("versions") or () if v.get("served")]
        while group and plural and versions and time.monotonic() < deadline:
            served = self.target.request("GET", f"/apis/{group}/{versions[0]}")
            resources = served.doc().get("resources") or () if served.ok else ()
            if any(r.get("name") == plural for r in resources):
                return
            time.sleep(0.25)


def _made_by_cluster(item: PlannedItem) -> bool:
    """Objects a new namespace's controllers make before anything is restored into it."""
    return item.group_resource == "serviceaccounts" and item.name == "default"


def custom_types(groups: list[Group]) -> set[str]:
    """The group-resources whose definitions the plan restores."""
    crds = next((g for g in groups if g.group_resource == CRD), None)
    return {item.name for item in crds.items} if crds else set()


@contextlib.contextmanager
def worker_pool(workers: int):
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
