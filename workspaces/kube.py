"""The console's side of reaching a cluster: health checks and namespace lists with the
timeouts of the settings. Building the client and explaining failures is the engine's
(``backups.engine.kube.client``); its names are re-exported here for the apps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from kubernetes import client as k8s

from backups.engine.kube import client as kube_client
from backups.engine.kube.client import (
    KubeconfigError,
    flatten_kubeconfig,
    parse_kubeconfig,
    server_of,
)
from palette_site import egress

__all__ = [
    "HealthReport",
    "KubeconfigError",
    "api_client",
    "check_egress",
    "check_health",
    "explain",
    "flatten_kubeconfig",
    "guard_client",
    "list_namespaces",
    "parse_kubeconfig",
    "server_of",
]


def check_egress(kubeconfig: str) -> None:
    """The API server passes the server's egress policy (raises KubeconfigError)."""
    try:
        egress.check_url(server_of(kubeconfig), what="API server")
    except egress.EgressDenied as exc:
        raise KubeconfigError(str(exc)) from None


def guard_client(api: k8s.ApiClient, kubeconfig: str) -> None:
    """Hold a client to the egress policy: its server now (KubeconfigError) and the
    address of every connection it opens (no DNS-rebinding window)."""
    check_egress(kubeconfig)
    egress.guard(api.rest_client.pool_manager, "API server")


def api_client(kubeconfig: str, pool_size: int = 4) -> k8s.ApiClient:
    """The engine's client for the kubeconfig, under the egress policy."""
    check_egress(kubeconfig)  # before building anything
    api = kube_client.api_client(kubeconfig, pool_size=pool_size)
    egress.guard(api.rest_client.pool_manager, "API server")
    return api


def explain(exc: BaseException, server: str = "the API server") -> str:
    """``backups.engine.kube.client.explain`` with the settings' timeout."""
    if isinstance(exc, egress.EgressDenied):
        return str(exc)
    return kube_client.explain(exc, server, timeout=settings.KUBE_TIMEOUT)


@dataclass
class HealthReport:
    reachable: bool
    version: str = ""
    node_count: int | None = None
    namespaces: list[str] = field(default_factory=list)
    message: str = ""


def check_health(kubeconfig: str) -> HealthReport:
    """Connect, read the server version, count nodes, list namespaces."""
    timeout = settings.KUBE_TIMEOUT
    try:
        server = server_of(kubeconfig)
        api = api_client(kubeconfig)
    except KubeconfigError as exc:
        return HealthReport(reachable=False, message=str(exc))
    try:
        with api:
            version = k8s.VersionApi(api).get_code(_request_timeout=timeout).git_version
            core = k8s.CoreV1Api(api)
            nodes = core.list_node(_request_timeout=timeout, limit=500)
            namespaces = core.list_namespace(_request_timeout=timeout)
    except Exception as exc:  # every failure becomes a sentence, not a traceback
        return HealthReport(reachable=False, message=explain(exc, server))
    names = sorted(ns.metadata.name for ns in namespaces.items)
    return HealthReport(
        reachable=True,
        version=version,
        node_count=len(nodes.items),
        namespaces=names,
        message=f"{version}, {len(nodes.items)} nodes, {len(names)} namespaces",
    )


def list_namespaces(kubeconfig: str) -> list[str]:
    """The cluster's namespaces now (raises the client's errors; see ``explain``)."""
    with api_client(kubeconfig) as api:
        found = k8s.CoreV1Api(api).list_namespace(_request_timeout=settings.KUBE_TIMEOUT)
    return sorted(ns.metadata.name for ns in found.items)
