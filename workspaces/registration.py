"""Registering a cluster: the one path the page and the command both take."""

from __future__ import annotations

from django.db import transaction

from . import audit
from .kube import HealthReport, parse_kubeconfig
from .models import Cluster, Workspace


def register_cluster(
    *,
    workspace: Workspace,
    name: str,
    kubeconfig: str,
    by=None,
    description: str = "",
    etcd_endpoint: str = "",
    etcd_ca: str = "",
    etcd_cert: str = "",
    etcd_key: str = "",
    health: HealthReport | None = None,
) -> Cluster:
    """Store the cluster, turn on etcd backups when it has an etcd endpoint, audit,
    then record its health: ``health`` when the caller already checked, else a
    check now (an unreachable cluster is still registered, with the reason).

    Raises KubeconfigError for a kubeconfig the console cannot use.
    """
    from backups.models import EtcdPolicy

    parse_kubeconfig(kubeconfig)
    with transaction.atomic():
        cluster = Cluster(
            workspace=workspace,
            name=name,
            description=description,
            kubeconfig=kubeconfig,
            etcd_endpoint=etcd_endpoint,
            etcd_ca=etcd_ca,
            etcd_cert=etcd_cert,
            etcd_key=etcd_key,
            created_by=audit.signed_in(by),
        )
        cluster.full_clean()
        cluster.save()
        if etcd_endpoint:
            default = workspace.locations.filter(is_default=True).first()
            EtcdPolicy.objects.create(cluster=cluster, location=default)
        audit.record(by, "registered", cluster, etcd=bool(etcd_endpoint))
    if health is None:
        cluster.check_health()
    else:
        cluster.record_health(health)
    return cluster
