"""Which etcd a cluster's endpoint is: the rules for an endpoint, and its identity.

A cluster's etcd holds every Secret of that cluster, so the console must never
snapshot (or restore into) an etcd that is not the registered cluster's own:

- ``check_endpoint``: the endpoint authenticates the console with a client
  certificate (https:// plus certificate and key) unless the server allows
  plaintext (``PALETTE_ETCD_ALLOW_PLAINTEXT``); it passes the egress policy; no
  other cluster uses the same endpoint.
- ``record``: at registration, read etcd's cluster ID and member list and keep
  them on the Cluster; an etcd another registered cluster already recorded is
  refused (the same etcd under another name or address).
- ``verify``: before every snapshot and etcd restore, and again when its job
  runs, the endpoint must still answer with the recorded cluster ID.

Every refusal is an ``EtcdIdentityError`` whose message a person can act on.
"""

from __future__ import annotations

from django.conf import settings

from backups.engine.etcd.client import connect
from backups.engine.etcd.errors import EtcdError
from backups.engine.etcd.tls import check_tls, parse_endpoints
from palette_site.egress import EgressDenied, check_host

TIMEOUT = 5.0  # seconds: registration and job starts wait on this


class EtcdIdentityError(ValueError):
    """The etcd endpoint may not be used; ``str()`` says why."""


def _endpoints(text: str) -> list:
    try:
        return parse_endpoints(text, tls_default=True)
    except EtcdError as exc:
        raise EtcdIdentityError(str(exc)) from None


def normalized(text: str) -> set[str]:
    """The host:port pairs of ``text``, for comparing clusters' (whatever the scheme)."""
    try:
        return {endpoint.target.lower() for endpoint in parse_endpoints(text, tls_default=True)}
    except EtcdError:
        return {text.strip().lower()}


def check_endpoint(cluster) -> None:
    """The rules for an endpoint, without connecting (raises EtcdIdentityError)."""
    from workspaces.models import Cluster

    if not cluster.etcd_endpoint:
        return
    endpoints = _endpoints(cluster.etcd_endpoint)
    if not settings.PALETTE_ETCD_ALLOW_PLAINTEXT:
        if any(not endpoint.tls for endpoint in endpoints):
            raise EtcdIdentityError(
                "The etcd endpoint must use https:// with a client certificate: this server "
                "does not allow plaintext etcd (PALETTE_ETCD_ALLOW_PLAINTEXT)."
            )
        if not (cluster.etcd_cert and cluster.etcd_key):
            raise EtcdIdentityError(
                "Give the etcd client certificate and its key: this server connects to etcd "
                "only with a client certificate (PALETTE_ETCD_ALLOW_PLAINTEXT is off)."
            )
    for endpoint in endpoints:
        try:
            check_host(endpoint.host, endpoint.port, what="etcd endpoint")
        except EgressDenied as exc:
            raise EtcdIdentityError(str(exc)) from None
    mine = normalized(cluster.etcd_endpoint)
    others = Cluster.objects.exclude(etcd_endpoint="")
    if cluster.pk:
        others = others.exclude(pk=cluster.pk)
    for other in others.only("etcd_endpoint").iterator():
        if mine & normalized(other.etcd_endpoint):
            raise EtcdIdentityError(
                "Another registered cluster already uses this etcd endpoint: each etcd belongs "
                "to one cluster."
            )


def read(cluster) -> tuple[str, list[dict]]:
    """(cluster ID in hex, members) as etcd tells them now.

    Raises EtcdIdentityError when the endpoint breaks a rule, EtcdError when
    etcd cannot be reached or refuses the console (its message says which).
    """
    check_endpoint(cluster)
    client, status = connect(
        cluster.etcd_endpoint,
        check_tls(cluster.etcd_ca, cluster.etcd_cert, cluster.etcd_key),
        timeout=TIMEOUT,
    )
    with client:
        members = [member.as_dict() for member in client.members()]
    return f"{status.cluster_id:x}", members


def record(cluster) -> None:
    """Read and set ``etcd_cluster_id`` and ``etcd_members`` (the caller saves).

    Refuses (EtcdIdentityError) an etcd whose cluster ID another registered
    cluster recorded; raises EtcdError when etcd does not answer.
    """
    from workspaces.models import Cluster

    if not cluster.etcd_endpoint:
        cluster.etcd_cluster_id, cluster.etcd_members = "", []
        return
    cluster_id, members = read(cluster)
    taken = Cluster.objects.filter(etcd_cluster_id=cluster_id)
    if cluster.pk:
        taken = taken.exclude(pk=cluster.pk)
    if taken.exists():
        raise EtcdIdentityError(
            "This etcd already belongs to another registered cluster (the same etcd cluster "
            "ID): each etcd belongs to one cluster."
        )
    cluster.etcd_cluster_id, cluster.etcd_members = cluster_id, members


def verify(cluster, *, refuse: type[Exception] = EtcdIdentityError) -> None:
    """Raise ``refuse`` unless the endpoint follows the rules and answers as the
    etcd recorded at registration.

    An etcd that does not answer (or refuses the certificates) passes: the job
    that follows fails with etcd's own, more precise, sentence. A cluster
    registered before identities were recorded, or while its etcd was down,
    has its identity recorded now, with the checks of a registration.
    """
    if cluster is None or not cluster.etcd_endpoint:
        return
    try:
        if not cluster.etcd_cluster_id:
            record(cluster)
            cluster.save(update_fields=["etcd_cluster_id", "etcd_members"])
            return
        cluster_id, _ = read(cluster)
    except EtcdError:
        return
    except EtcdIdentityError as exc:
        raise refuse(str(exc)) from None
    if cluster_id != cluster.etcd_cluster_id:
        raise refuse(
            f"etcd at {cluster.etcd_endpoint} now answers as etcd cluster {cluster_id}, not "
            f"{cluster.etcd_cluster_id} recorded when {cluster.name} was registered: refusing "
            "to use it. If this cluster's etcd was rebuilt, an administrator clears the "
            "recorded etcd cluster ID in the admin, and it is read again."
        )


def refused(job) -> bool:
    """For a job's task: True (and the job marked failed) when its cluster's etcd
    does not pass ``verify``."""
    try:
        verify(job.cluster)
    except EtcdIdentityError as exc:
        job.mark_failed(str(exc))
        return True
    return False
