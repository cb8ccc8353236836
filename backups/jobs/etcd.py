"""etcd snapshots and the console's own etcd restores, as jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from backups.engine.storage.layout import Layout
from backups.engine.storage.sealed import sealed_with
from locations.models import BackupLocation
from workspaces import audit, etcd_identity
from workspaces.models import Cluster
from workspaces.roles import Action

from ..engine.etcd.restore import restore_locally
from ..engine.etcd.snapshot import take_snapshot
from ..engine_inputs import local_target, snapshot_request, snapshot_restore_request
from ..etcd_retention import apply_retention
from ..models import ACTIVE_STATUSES, EtcdPolicy, EtcdRestore, EtcdSnapshot, Status
from ..naming import free_name
from .base import Job, JobFailed, JobRefused, Outcome


def completed_fields(outcome) -> dict:
    """The row fields a good ``take_snapshot`` outcome measured."""
    return dict(
        object_key=outcome.key, size_bytes=outcome.size_bytes, sha256=outcome.sha256,
        revision=outcome.revision, etcd_version=outcome.etcd_version,
        member=outcome.member[:200], items_done=outcome.size_bytes,
        items_total=outcome.size_bytes, phase="Completed",
    )  # fmt: skip


def record_completed(snapshot: EtcdSnapshot, outcome) -> EtcdSnapshot:
    """Mark ``snapshot`` completed with what ``take_snapshot``'s good outcome measured."""
    snapshot.finish(Status.COMPLETED, **completed_fields(outcome))
    return snapshot


def record_policy_result(cluster_id: int, ok: bool, error: str = "", now=None) -> None:
    EtcdPolicy.objects.filter(cluster_id=cluster_id).update(
        last_run_at=now or timezone.now(),
        last_status="completed" if ok else "failed",
        last_error="" if ok else error,
    )


class SnapshotJob(Job):
    """Stream one etcd snapshot into its location, then keep the policy's number of copies."""

    model = EtcdSnapshot
    kind = "etcd_snapshot"
    noun = "snapshot"
    task_name = "backups.tasks.run_etcd_snapshot"
    related = ("cluster__workspace", "location")
    start_action = Action.SNAPSHOT
    template, context_name = "backups/etcd_detail.html", "snapshot"
    cluster_gone = "The cluster was removed before the snapshot ran."

    def engine(self):
        """The one engine call; it aborts its upload at its next chunk once ``should_stop``."""
        return take_snapshot(
            snapshot_request(self.row, self.provider),
            # The page counts "items": bytes are shown as done, of an unknown total.
            progress=lambda done, _total, phase: self.progress(done, 0, phase),
            log=self.reporter.log,
            should_stop=self.should_stop,
        )

    def work(self) -> Outcome:
        outcome = self.engine()
        if outcome.ok:
            fields = completed_fields(outcome) | {"key_id": sealed_with(self.provider)}
            return Outcome(Status.COMPLETED, "", fields)
        if outcome.cancelled:
            return Outcome(Status.CANCELLED)
        return Outcome(Status.FAILED, outcome.error)

    def clean_up(self) -> None:
        row = self.row
        self.provider.delete(Layout(row.location.prefix).etcd_file(row.cluster_name, row.name))

    def after(self, outcome: Outcome) -> None:
        row = self.row
        policy = EtcdPolicy.objects.filter(cluster_id=row.cluster_id).first()
        if row.status == Status.COMPLETED and policy is not None and policy.enabled:
            removed = apply_retention(row.cluster, row.location, policy.keep, self.provider)
            if removed:
                row.append_log(f"retention: deleted {', '.join(removed)}")
        record_policy_result(row.cluster_id, row.status == Status.COMPLETED, row.error)


class EtcdRestoreJob(Job):
    """A snapshot's restore runbook, run on a control plane the console can reach.

    Destructive: once it runs it goes to its end (the runbook itself puts the old
    data back when a step fails); only a pending one can be cancelled.
    """

    model = EtcdRestore
    kind = "etcd_restore"
    noun = "etcd restore"
    task_name = "backups.tasks.run_etcd_restore"
    related = ("snapshot__location", "snapshot__cluster", "cluster", "workspace")
    start_action = Action.MANAGE
    stops_while_running = False
    template, context_name = "backups/etcd_restore.html", "restore"

    def location(self):
        if self.row.snapshot is None:
            raise JobFailed("The snapshot was deleted before the restore ran.")
        return self.row.snapshot.location

    def engine(self):
        """The one engine call; it may stop before the steps that stop the cluster."""
        return restore_locally(
            snapshot_restore_request(self.row.snapshot, self.provider),
            log=self.reporter.log,
            should_stop=self.should_stop,
        )

    def work(self) -> Outcome:
        result = self.engine()
        if result.ok:
            return Outcome(Status.COMPLETED, "", {"phase": "Completed"})
        return Outcome(Status.FAILED, result.error, {"phase": "Failed"})

    def after(self, outcome: Outcome) -> None:
        if outcome.fields:
            ok = outcome.status == Status.COMPLETED
            audit.record(self.row.created_by, "restored etcd", self.row, ok=ok)


def snapshot_name(cluster: str, at: datetime | None = None) -> str:
    at = (at or timezone.now()).astimezone(UTC)
    return f"{cluster}-etcd-{at:%Y%m%d%H%M%S}"


def start_snapshot(
    cluster: Cluster, location: BackupLocation, *, by=None, scheduled: bool = False, now=None
) -> EtcdSnapshot:
    """Create the snapshot row (pending) and queue its task after commit."""
    if not cluster.has_etcd:
        raise JobRefused(
            f"Cluster {cluster} has no etcd endpoint. Register it with --etcd-endpoint (and its "
            "client certificates) to take etcd snapshots."
        )
    etcd_identity.verify(cluster, refuse=JobRefused)  # still the etcd registered
    if location.status == BackupLocation.Status.UNAVAILABLE:
        raise JobRefused(f"Location {location} is unavailable ({location.status_message}).")
    running = EtcdSnapshot.objects.filter(cluster=cluster, status__in=ACTIVE_STATUSES).first()
    if running:
        raise JobRefused(f"Snapshot {running.name} of {cluster} is still running.")
    return SnapshotJob.create(
        by,
        "" if scheduled else "started etcd snapshot",
        {"location": location.name},
        name=free_name(location.etcd_snapshots, snapshot_name(cluster.name, now)),
        workspace=cluster.workspace,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        scheduled=scheduled,
    )


def start_etcd_restore(snapshot: EtcdSnapshot, *, by=None) -> EtcdRestore:
    """Queue the console's own run of the restore runbook (the caller confirmed it)."""
    cluster = snapshot.cluster
    if cluster is None or local_target(cluster) is None:
        raise JobRefused(
            "The console cannot reach this cluster's etcd hosts: follow the runbook on each member."
        )
    etcd_identity.verify(cluster, refuse=JobRefused)  # still the etcd registered
    if EtcdRestore.objects.filter(cluster=cluster, status__in=ACTIVE_STATUSES).exists():
        raise JobRefused(f"An etcd restore of {cluster} is already running.")
    return EtcdRestoreJob.create(
        by,
        "started etcd restore",
        {"snapshot": snapshot.name},
        snapshot=snapshot,
        snapshot_name=snapshot.name,
        workspace=snapshot.workspace,
        cluster=cluster,
        cluster_name=cluster.name,
    )
