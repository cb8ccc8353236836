"""The one place that turns the console's rows into the engine's inputs.

``backup_request(backup)``, ``restore_request(restore)``, ``snapshot_request(snapshot)``
and ``snapshot_restore_request(snapshot)`` build the dataclasses of
``backups.engine.inputs`` from model rows (the related rows must exist: the caller
checks that first). Each builds the location's provider unless one is passed; the
caller closes it (``request.store.provider.close()``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC

from django.conf import settings

from backups.engine.etcd.local import find_local_target, load_local_targets
from backups.engine.inputs import (
    BackupRequest,
    BackupSpec,
    ClusterConnection,
    EtcdEndpoint,
    EtcdRestoreRequest,
    LocalTarget,
    RestoreRequest,
    RestoreSpec,
    SnapshotRequest,
    Store,
    VolumeSettings,
)
from backups.engine.storage.base import Provider
from backups.engine.storage.layout import Layout
from backups.models import Status
from locations.providers import get_provider
from workspaces.kube import guard_client


def cluster_connection(cluster) -> ClusterConnection:
    return ClusterConnection(
        name=cluster.name,
        kubeconfig=cluster.kubeconfig,
        connect_timeout=settings.KUBE_TIMEOUT,
        guard=guard_client,
    )


def store(location, provider: Provider | None = None) -> Store:
    from locations.restic_passwords import passwords

    return Store(
        provider=provider or get_provider(location),
        name=location.name,
        prefix=location.prefix,
        restic_password=passwords(location) if location.pk else None,
    )


def etcd_endpoint(cluster, name: str = "") -> EtcdEndpoint:
    """The cluster's etcd; none (an empty endpoint) when the cluster row is gone."""
    if cluster is None:
        return EtcdEndpoint(cluster_name=name, endpoint="")
    return EtcdEndpoint(
        cluster_name=cluster.name,
        endpoint=cluster.etcd_endpoint,
        ca=cluster.etcd_ca,
        cert=cluster.etcd_cert,
        key=cluster.etcd_key,
        # Recorded at registration (hex); unchecked for a cluster that has none yet.
        expected_cluster_id=int(cluster.etcd_cluster_id, 16) if cluster.etcd_cluster_id else None,
    )


def local_target(cluster) -> LocalTarget | None:
    """The control plane of the server's list (``PALETTE_ETCD_LOCAL_TARGETS``) whose etcd
    is ``cluster``'s, or None: only those are restored by the console itself."""
    if cluster is None or not cluster.etcd_endpoint:
        return None
    targets = load_local_targets(settings.PALETTE_ETCD_LOCAL_TARGETS)
    return find_local_target(targets, cluster.etcd_endpoint)


def volume_settings() -> VolumeSettings:
    return VolumeSettings(
        mover_image=settings.PALETTE_MOVER_IMAGE,
        snapshot_timeout=float(settings.PALETTE_SNAPSHOT_TIMEOUT),
        mover_start_timeout=float(settings.PALETTE_MOVER_START_TIMEOUT),
        idle_timeout=float(settings.PALETTE_MOVER_IDLE_TIMEOUT),
        restore_wait_timeout=float(settings.PALETTE_RESTORE_WAIT_TIMEOUT),
    )


def operation_label(row) -> str:
    """The ``palette.io/operation`` value of a job's temporary objects:
    ``<kind>-<pk>-<token>``, the token a digest of the row's creation time, so that
    another console sharing the cluster (its own ``restore-3``) never passes for this
    one's (``backups/jobs/volumes.py`` sweeps only labels it can match to its rows)."""
    created = row.created_at.astimezone(UTC).isoformat() if row.created_at else ""
    kind = row._meta.model_name
    token = hashlib.sha256(f"{kind}:{row.pk}:{created}".encode()).hexdigest()[:10]
    return f"{kind}-{row.pk}-{token}"


FILTERS = ("include_namespaces", "exclude_namespaces", "include_resources", "exclude_resources")


def _filters(row) -> dict[str, tuple[str, ...]]:
    return {name: tuple(getattr(row, name) or ()) for name in FILTERS}


def backup_request(backup, provider: Provider | None = None) -> BackupRequest:
    return BackupRequest(
        name=backup.name,
        cluster=cluster_connection(backup.cluster),
        store=store(backup.location, provider),
        spec=BackupSpec(
            **_filters(backup),
            cluster_resources=backup.cluster_resources or "auto",
            label_selector=backup.label_selector or "",
            ttl=backup.ttl or BackupSpec.ttl,
            include_disks=bool(backup.include_disks),
            volume_mode=backup.volume_mode or "auto",
            volume_policy=dict(backup.volume_policy or {}),
        ),
        schedule_name=backup.schedule.prefix if backup.schedule_id else "",
        operation=operation_label(backup),
        volumes=volume_settings(),
    )


def restore_request(restore, provider: Provider | None = None) -> RestoreRequest:
    backup = restore.backup
    return RestoreRequest(
        name=restore.name,
        backup_name=backup.name,
        backup_sha256=backup.sha256,
        cluster=cluster_connection(restore.target_cluster),
        store=store(backup.location, provider),
        spec=RestoreSpec(
            **_filters(restore),
            namespace_mapping=dict(restore.namespace_mapping or {}),
            label_selector=restore.label_selector or "",
            cluster_resources=restore.cluster_resources or "auto",
            restore_pvs=bool(restore.restore_pvs),
            preserve_node_ports=bool(restore.preserve_node_ports),
            existing_policy=restore.existing_policy,
            resource_modifiers=restore.resource_modifiers or "",
            storage_class_mapping=dict(restore.storage_class_mapping or {}),
            chosen_items=tuple(tuple(item) for item in restore.chosen_items or ()),
        ),
        preview=bool(restore.is_preview),
        operation=operation_label(restore),
        volumes=volume_settings(),
    )


def snapshot_request(snapshot, provider: Provider | None = None) -> SnapshotRequest:
    return SnapshotRequest(
        name=snapshot.name,
        etcd=etcd_endpoint(snapshot.cluster, snapshot.cluster_name),
        store=store(snapshot.location, provider),
    )


def snapshot_restore_request(snapshot, provider: Provider | None = None) -> EtcdRestoreRequest:
    """The restore of ``snapshot`` (an EtcdSnapshot row) on its cluster's local target."""
    completed = snapshot.status == Status.COMPLETED
    key = Layout(snapshot.location.prefix).etcd_file(snapshot.cluster_name, snapshot.name)
    return EtcdRestoreRequest(
        snapshot_name=snapshot.name,
        object_key=snapshot.object_key or key,
        sha256=snapshot.sha256 if completed else "",
        etcd=etcd_endpoint(snapshot.cluster, snapshot.cluster_name),
        store=store(snapshot.location, provider),
        target=local_target(snapshot.cluster),
    )
