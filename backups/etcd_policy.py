"""The per-cluster etcd policy: where its snapshots go, and the tick that takes them."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from locations.models import BackupLocation
from workspaces.models import Cluster

from . import cron
from .jobs import JobRefused, start_snapshot
from .jobs.etcd import record_policy_result
from .models import EtcdPolicy, EtcdSnapshot

log = logging.getLogger(__name__)


def policy_location(cluster: Cluster) -> BackupLocation | None:
    """The policy's location, else the workspace's default location."""
    policy = getattr(cluster, "etcd_policy", None)
    if policy and policy.location_id:
        return policy.location
    return cluster.workspace.locations.filter(is_default=True).first()


def snapshot_location(cluster: Cluster) -> BackupLocation:
    """policy_location, or JobRefused saying how to give the cluster one."""
    location = policy_location(cluster)
    if location is None:
        raise JobRefused(
            "Set a location on the etcd policy, or a default location for the workspace."
        )
    return location


def tick_etcd(now: datetime | None = None) -> list[EtcdSnapshot]:
    """Start the snapshots whose policy is due; each firing is claimed once
    (a conditional UPDATE of next_run_at, as for backup schedules)."""
    now = now or timezone.now()
    started = []
    policies = EtcdPolicy.objects.filter(enabled=True).select_related(
        "cluster__workspace", "location"
    )
    for policy in policies.filter(next_run_at__isnull=True):
        # None when the stored expression never fires: it stays unplanned, and the
        # others go on.
        first = cron.next_run(policy.cron, now)
        EtcdPolicy.objects.filter(pk=policy.pk, next_run_at__isnull=True).update(next_run_at=first)
    for policy in policies.filter(next_run_at__lte=now):
        following = cron.next_run(policy.cron, now)
        won = EtcdPolicy.objects.filter(pk=policy.pk, next_run_at=policy.next_run_at).update(
            next_run_at=following
        )
        if not won or not policy.cluster.has_etcd:
            continue
        try:
            location = snapshot_location(policy.cluster)
            started.append(start_snapshot(policy.cluster, location, scheduled=True, now=now))
        except JobRefused as exc:
            record_policy_result(policy.cluster_id, False, str(exc), now)
            log.warning("etcd policy of %s: %s", policy.cluster, exc)
        except Exception:  # one policy's surprise must never stop the others
            log.exception("etcd policy of %s could not fire", policy.cluster)
    return started
