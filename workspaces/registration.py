"""Registering a cluster: the one path the page and the command both take."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import audit
from .kube import HealthReport, check_egress, parse_kubeconfig
from .models import Cluster, Workspace


def check_etcd_settings(endpoint: str, ca: str, cert: str, key: str) -> None:
    """ValidationError (by field) for an etcd endpoint that is not an http(s) URL with a
    host and a valid port, or PEM text that is not a certificate or a key (or a key of
    another certificate): refused now, not saved to fail at the first snapshot."""
    from backups.engine.etcd.errors import EtcdError
    from backups.engine.etcd.tls import check_tls, parse_endpoints

    errors: dict[str, str] = {}
    if endpoint:
        try:
            parse_endpoints(endpoint, tls_default=bool(cert or ca))
        except EtcdError as exc:
            errors["etcd_endpoint"] = str(exc)
    try:
        check_tls(ca, cert, key)
    except EtcdError as exc:
        text = str(exc)
        field = "etcd_ca" if " CA " in text else "etcd_key" if " key " in text else "etcd_cert"
        errors[field] = text
    if errors:
        raise ValidationError(errors)


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

    With an etcd endpoint, etcd's cluster ID and members are read and kept
    (``etcd_identity.record``); an etcd that does not answer now is registered
    without them, and they are read at its first snapshot.

    Raises KubeconfigError for a kubeconfig the console cannot use, ValidationError
    (by field) for anything else, including a name registered at the same moment.
    """
    from backups.models import EtcdPolicy

    from .etcd_identity import EtcdError, EtcdIdentityError, record

    parse_kubeconfig(kubeconfig)
    check_etcd_settings(etcd_endpoint, etcd_ca, etcd_cert, etcd_key)
    check_egress(kubeconfig)
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
    try:
        record(cluster)
    except EtcdIdentityError as exc:
        raise ValidationError({"etcd_endpoint": str(exc)}) from None
    except EtcdError:
        pass  # not reachable now: recorded at the first snapshot
    try:
        with transaction.atomic():
            cluster.full_clean()  # again: another registration may have taken the endpoint
            cluster.save()
            if etcd_endpoint:
                default = workspace.locations.filter(is_default=True).first()
                EtcdPolicy.objects.create(cluster=cluster, location=default)
            audit.record(by, "registered", cluster, etcd=bool(etcd_endpoint))
    except IntegrityError:  # the same name or etcd, registered between the check and the insert
        raise ValidationError({"name": "A cluster with this name is already registered."}) from None
    if health is None:
        cluster.check_health()
    else:
        cluster.record_health(health)
    return cluster


SECRET_FIELDS = ("kubeconfig", "etcd_key")


def update_cluster(cluster: Cluster, *, by=None, **changes) -> list[str]:
    """Change a registered cluster: its description, kubeconfig, etcd endpoint and
    certificates. An empty kubeconfig or etcd key keeps the stored one (secrets are
    never shown, so they cannot be "left as they are" in a form); clearing the
    endpoint clears the certificates and key too. Checked as at registration; the
    audit names the fields changed, never their values. Returns those names.

    Raises KubeconfigError or ValidationError (by field); nothing is saved then.
    """
    from backups.models import EtcdPolicy

    if not changes.get("kubeconfig"):
        changes.pop("kubeconfig", None)
    if not changes.get("etcd_endpoint", cluster.etcd_endpoint):
        changes.update(etcd_endpoint="", etcd_ca="", etcd_cert="", etcd_key="")
    elif not changes.get("etcd_key"):
        changes.pop("etcd_key", None)
    if "kubeconfig" in changes:
        parse_kubeconfig(changes["kubeconfig"])
        check_egress(changes["kubeconfig"])
    merged = {
        f: changes.get(f, getattr(cluster, f))
        for f in ("etcd_endpoint", "etcd_ca", "etcd_cert", "etcd_key")
    }
    check_etcd_settings(*merged.values())
    changed = [f for f, v in changes.items() if getattr(cluster, f) != v]
    if not changed:
        return []
    from .etcd_identity import EtcdError, EtcdIdentityError, record

    for f in changed:
        setattr(cluster, f, changes[f])
    try:
        cluster.full_clean()
        if {"etcd_endpoint", "etcd_ca", "etcd_cert", "etcd_key"} & set(changed):
            try:  # the etcd it now names: the rules of a registration
                record(cluster)
            except EtcdIdentityError as exc:
                raise ValidationError({"etcd_endpoint": str(exc)}) from None
            except EtcdError:
                cluster.etcd_cluster_id, cluster.etcd_members = "", []  # read at next snapshot
            changed += ["etcd_cluster_id", "etcd_members"]
    except ValidationError:
        cluster.refresh_from_db()  # nothing saved, nothing half-changed in memory
        raise
    with transaction.atomic():
        cluster.save(update_fields=changed)
        policy = EtcdPolicy.objects.filter(cluster=cluster)
        if not cluster.etcd_endpoint:
            policy.update(enabled=False, next_run_at=None)  # nothing to snapshot any more
        elif not policy.exists():
            default = cluster.workspace.locations.filter(is_default=True).first()
            EtcdPolicy.objects.create(cluster=cluster, location=default)
        audit.record(by, "changed", cluster, fields=changed)
    if "kubeconfig" in changed:
        cluster.check_health()
    return changed
