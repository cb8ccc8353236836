"""A Kubernetes client built from a cluster's stored kubeconfig, and health checks.

Errors reaching a cluster are turned into one sentence a person can act on
(``explain``), never a traceback and never a credential.
"""

from __future__ import annotations

import os
import socket
import ssl
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
import yaml
from django.conf import settings
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import load_kube_config_from_dict

from palette_site import egress

# kubeconfig keys that point at files, and the inline keys that replace them.
FILE_KEYS = {
    "certificate-authority": "certificate-authority-data",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
}


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; the message says why and what to do."""


def parse_kubeconfig(text: str) -> dict:
    """Check that a kubeconfig is self-contained and names a usable context."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"This is not valid YAML: {exc.__class__.__name__}.") from None
    if not isinstance(config, dict) or config.get("kind", "Config") != "Config":
        raise KubeconfigError("This is not a kubeconfig (expected 'kind: Config').")
    contexts = {c.get("name"): c.get("context", {}) for c in config.get("contexts") or []}
    current = config.get("current-context") or (next(iter(contexts)) if contexts else None)
    if not current or current not in contexts:
        raise KubeconfigError(
            "The kubeconfig has no current-context that names one of its contexts."
        )
    clusters = {c.get("name"): c.get("cluster", {}) for c in config.get("clusters") or []}
    if contexts[current].get("cluster") not in clusters:
        raise KubeconfigError(
            f"Context {current!r} names a cluster the kubeconfig does not define."
        )
    for section in ("clusters", "users"):
        for entry in config.get(section) or []:
            body = entry.get(section[:-1]) or {}
            refs = [key for key in (*FILE_KEYS, "tokenFile") if body.get(key)]
            if refs:
                raise KubeconfigError(
                    f"The kubeconfig refers to files ({', '.join(refs)}) that the console cannot "
                    "read. Export a self-contained one with: kubectl config view --raw --flatten"
                )
            if body.get("exec") or body.get("auth-provider"):
                raise KubeconfigError(
                    "The kubeconfig runs a credential plugin (exec/auth-provider), which the "
                    "console cannot run. Use a service-account token or a client certificate."
                )
    config["current-context"] = current
    return config


def flatten_kubeconfig(text: str, base_dir: Path) -> str:
    """Inline the files a kubeconfig refers to (paths relative to ``base_dir``),
    as ``kubectl config view --flatten`` does."""
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        return text
    for section in ("clusters", "users"):
        for entry in config.get(section) or []:
            body = entry.get(section[:-1]) or {}
            for file_key, data_key in FILE_KEYS.items():
                if body.get(file_key):
                    path = Path(os.path.expanduser(body.pop(file_key)))
                    path = path if path.is_absolute() else base_dir / path
                    body[data_key] = b64encode(path.read_bytes()).decode()
    return yaml.safe_dump(config, sort_keys=False)


def server_of(kubeconfig: str) -> str:
    """The API server URL of the kubeconfig's current context (not a secret)."""
    config = parse_kubeconfig(kubeconfig)
    context = next(
        c["context"] for c in config["contexts"] if c["name"] == config["current-context"]
    )
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    return cluster.get("server", "")


def check_egress(kubeconfig: str) -> None:
    """The API server passes the server's egress policy (raises KubeconfigError)."""
    try:
        egress.check_url(server_of(kubeconfig), what="API server")
    except egress.EgressDenied as exc:
        raise KubeconfigError(str(exc)) from None


def api_client(kubeconfig: str, pool_size: int = 4) -> k8s.ApiClient:
    """A client for the kubeconfig's current context.

    ``pool_size`` is the urllib3 pool: raise it for parallel requests, or they
    silently queue behind the default few connections.
    """
    config = parse_kubeconfig(kubeconfig)
    check_egress(kubeconfig)  # before every connection a job or a check makes
    configuration = k8s.Configuration()
    try:
        load_kube_config_from_dict(config, client_configuration=configuration, persist_config=False)
    except ConfigException as exc:
        raise KubeconfigError(f"The kubeconfig cannot be used: {exc}") from None
    # Set before the ApiClient exists: it builds its connection pool from these.
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False
    api = k8s.ApiClient(configuration)
    egress.guard(api.rest_client.pool_manager, "API server")  # and at every connection
    return api


def explain(exc: BaseException, server: str = "the API server") -> str:
    """One sentence on why a call to a cluster failed, for a person to act on."""
    timeout = settings.KUBE_TIMEOUT
    if isinstance(exc, KubeconfigError | egress.EgressDenied):
        return str(exc)
    if isinstance(exc, ApiException) and exc.status:
        if exc.status == 401:
            return f"{server} rejected the credentials (401 Unauthorized): the token or client certificate is not valid there."
        if exc.status == 403:
            return f"{server} answered 403 Forbidden: the credentials are valid but lack permission ({exc.reason})."
        return f"{server} answered {exc.status} {exc.reason}."
    reason = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    # The client reports transport failures (TLS, ...) as ApiException with status 0.
    text = str(exc.reason) if isinstance(exc, ApiException) else str(reason)
    if (
        isinstance(reason, urllib3.exceptions.SSLError | ssl.SSLError)
        or "CERTIFICATE_VERIFY_FAILED" in text
    ):
        return (
            f"TLS failed with {server}: its certificate is not trusted by the kubeconfig's "
            "certificate-authority-data, or it does not match the server name."
        )
    # NewConnectionError is a kind of urllib3 TimeoutError: test it first.
    if isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionError):
        if "refused" in text.lower():
            return f"Nothing answers at {server} (connection refused): is the API server running and the address right?"
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"The host name of {server} does not resolve."
        return f"Could not connect to {server}: {text.split(':')[-1].strip()}"
    if isinstance(reason, urllib3.exceptions.TimeoutError | socket.timeout | TimeoutError):
        return f"{server} did not answer within {timeout} seconds."
    return f"Could not talk to {server}: {exc.__class__.__name__}."


@dataclass
class Health:
    reachable: bool
    version: str = ""
    node_count: int | None = None
    namespaces: list[str] = field(default_factory=list)
    message: str = ""


def check_health(kubeconfig: str) -> Health:
    """Connect, read the server version, count nodes, list namespaces."""
    timeout = settings.KUBE_TIMEOUT
    try:
        server = server_of(kubeconfig)
        api = api_client(kubeconfig)
    except KubeconfigError as exc:
        return Health(reachable=False, message=str(exc))
    try:
        with api:
            version = k8s.VersionApi(api).get_code(_request_timeout=timeout).git_version
            core = k8s.CoreV1Api(api)
            nodes = core.list_node(_request_timeout=timeout, limit=500)
            namespaces = core.list_namespace(_request_timeout=timeout)
    except Exception as exc:  # every failure becomes a sentence, not a traceback
        return Health(reachable=False, message=explain(exc, server))
    names = sorted(ns.metadata.name for ns in namespaces.items)
    return Health(
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
