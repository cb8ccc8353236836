"""etcd snapshots and restores as jobs: starting them, and the policy tick."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from locations.models import BackupLocation
from workspaces import audit, etcd_identity
from workspaces.models import Cluster

from . import cron
from .jobs import BackupRefused
from .models import ACTIVE_STATUSES, EtcdPolicy, EtcdRestore, EtcdSnapshot, Status

log = logging.getLogger(__name__)


def snapshot_name(cluster: str, at: datetime | None = None) -> str:
    at = (at or timezone.now()).astimezone(UTC)
    return f"{cluster}-etcd-{at:%Y%m%d%H%M%S}"


def policy_location(cluster: Cluster) -> BackupLocation | None:
    """The policy's location, else the workspace's default location."""
    policy = getattr(cluster, "etcd_policy", None)
    if policy and policy.location_id:
        return policy.location
    return cluster.workspace.locations.filter(is_default=True).first()


def start_snapshot(
    cluster: Cluster, location: BackupLocation, *, by=None, scheduled: bool = False, now=None
) -> EtcdSnapshot:
    """Create the snapshot row (pending) and queue its task after commit."""
    from .tasks import run_etcd_snapshot

    if not cluster.has_etcd:
        raise BackupRefused(
            f"Cluster {cluster} has no etcd endpoint. Register it with --etcd-endpoint (and its "
            "client certificates) to take etcd snapshots."
        )
    etcd_identity.verify(cluster, refuse=BackupRefused)  # still the etcd registered
    if location.status == BackupLocation.Status.UNAVAILABLE:
        raise BackupRefused(f"Location {location} is unavailable ({location.status_message}).")
    running = EtcdSnapshot.objects.filter(cluster=cluster, status__in=ACTIVE_STATUSES).first()
    if running:
        raise BackupRefused(f"Snapshot {running.name} of {cluster} is still running.")
    name = snapshot_name(cluster.name, now)
    taken = set(
        EtcdSnapshot.objects.filter(location=location, name__startswith=name).values_list(
            "name", flat=True
        )
    )
    if name in taken:  # a second snapshot within the same second
        name = next(f"{name}-{n}" for n in range(2, len(taken) + 3) if f"{name}-{n}" not in taken)
    with transaction.atomic():
        snapshot = EtcdSnapshot.objects.create(
            name=name,
            workspace=cluster.workspace,
            cluster=cluster,
            cluster_name=cluster.name,
            location=location,
            scheduled=scheduled,
            created_by=audit.signed_in(by),
        )
        if not scheduled:
            audit.record(by, "started etcd snapshot", snapshot, location=location.name)
        transaction.on_commit(lambda: run_etcd_snapshot.delay(snapshot.pk))
    return snapshot


def start_etcd_restore(snapshot: EtcdSnapshot, *, by=None) -> EtcdRestore:
    """Queue the console's own run of the restore runbook (the caller confirmed it)."""
    from .engine.etcd import can_restore_locally
    from .tasks import run_etcd_restore

    cluster = snapshot.cluster
    if cluster is None or not can_restore_locally(cluster):
        raise BackupRefused(
            "The console cannot reach this cluster's etcd hosts: follow the runbook on each member."
        )
    etcd_identity.verify(cluster, refuse=BackupRefused)  # still the etcd registered
    if EtcdRestore.objects.filter(cluster=cluster, status__in=ACTIVE_STATUSES).exists():
        raise BackupRefused(f"An etcd restore of {cluster} is already running.")
    with transaction.atomic():
        restore = EtcdRestore.objects.create(
            snapshot=snapshot,
            snapshot_name=snapshot.name,
            workspace=snapshot.workspace,
            cluster=cluster,
            cluster_name=cluster.name,
            created_by=audit.signed_in(by),
        )
        audit.record(by, "started etcd restore", restore, snapshot=snapshot.name)
        transaction.on_commit(lambda: run_etcd_restore.delay(restore.pk))
    return restore


def record_completed(snapshot: EtcdSnapshot, outcome) -> EtcdSnapshot:
    """Mark ``snapshot`` completed with what ``take_snapshot``'s good outcome measured."""
    snapshot.finish(
        Status.COMPLETED,
        object_key=outcome.key,
        size_bytes=outcome.size_bytes,
        sha256=outcome.sha256,
        revision=outcome.revision,
        etcd_version=outcome.etcd_version,
        member=outcome.member[:200],
        items_done=outcome.size_bytes,
        items_total=outcome.size_bytes,
        phase="Completed",
    )
    return snapshot


def record_policy_result(cluster_id: int, ok: bool, error: str = "", now=None) -> None:
    EtcdPolicy.objects.filter(cluster_id=cluster_id).update(
        last_run_at=now or timezone.now(),
        last_status="completed" if ok else "failed",
        last_error="" if ok else error,
    )


def tick_etcd(now: datetime | None = None) -> list[EtcdSnapshot]:
    """Start the snapshots whose policy is due; each firing is claimed once
    (a conditional UPDATE of next_run_at, as for backup schedules)."""
    now = now or timezone.now()
    started = []
    policies = EtcdPolicy.objects.filter(enabled=True).select_related(
        "cluster__workspace", "location"
    )
    for policy in policies.filter(next_run_at__isnull=True):
        first = cron.next_runs(policy.cron, now, 1)[0]
        EtcdPolicy.objects.filter(pk=policy.pk, next_run_at__isnull=True).update(next_run_at=first)
    for policy in policies.filter(next_run_at__lte=now):
        following = cron.next_runs(policy.cron, now, 1)[0]
        won = EtcdPolicy.objects.filter(pk=policy.pk, next_run_at=policy.next_run_at).update(
            next_run_at=following
        )
        if not won or not policy.cluster.has_etcd:
            continue
        location = policy_location(policy.cluster)
        try:
            if location is None:
                raise BackupRefused(
                    "No location: set one on the policy or give the workspace a default location."
                )
            started.append(start_snapshot(policy.cluster, location, scheduled=True, now=now))
        except BackupRefused as exc:
            record_policy_result(policy.cluster_id, False, str(exc), now)
            log.warning("etcd policy of %s: %s", policy.cluster, exc)
    return started
