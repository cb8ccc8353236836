"""A Kubernetes client built from a kubeconfig's text, and failures told in one sentence.

Errors reaching a cluster are turned into one sentence a person can act on
(``explain``), never a traceback and never a credential. Timeouts are the
caller's: nothing here reads settings.
"""

from __future__ import annotations

import os
import socket
import ssl
from base64 import b64encode
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import load_kube_config_from_dict

# A connection attempt to an API server gives up after this many seconds unless told otherwise.
CONNECT_TIMEOUT = 10

# kubeconfig keys that point at files, and the inline keys that replace them.
FILE_KEYS = {
    "certificate-authority": "certificate-authority-data",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
}


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; the message says why and what to do."""


class _NoAliases(yaml.SafeLoader):
    """YAML without aliases: a kubeconfig never needs them, and an alias bomb
    ("billion laughs") expands to gigabytes when the config is copied or dumped."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise KubeconfigError("The kubeconfig uses YAML aliases (*name); write it out in full.")
        return super().compose_node(parent, index)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML parser's complaint in words, with where it is ("line 3, column 7"),
    not its class name ("ScannerError")."""
    problem = getattr(exc, "problem", None) or "it cannot be read"
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def _load(text: str) -> dict:
    """The kubeconfig as a dict whose clusters, users and contexts are lists of
    ``{name: str, <kind>: dict}`` (KubeconfigError otherwise, never a traceback)."""
    try:
        config = yaml.load(text, Loader=_NoAliases)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"This is not valid YAML: {yaml_problem(exc)}.") from None
    except RecursionError:
        raise KubeconfigError("This YAML is nested too deeply to be a kubeconfig.") from None
    if not isinstance(config, dict) or config.get("kind", "Config") != "Config":
        raise KubeconfigError("This is not a kubeconfig (expected 'kind: Config').")
    for section, body_key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
        entries = config.get(section) or []
        if not isinstance(entries, list):
            raise KubeconfigError(f"'{section}' must be a list of entries with a name.")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise KubeconfigError(f"Every entry of '{section}' needs a name.")
            if not isinstance(entry.get(body_key) or {}, dict):
                raise KubeconfigError(
                    f"'{section}' entry {entry['name']!r}: '{body_key}' must be a mapping."
                )
    if not isinstance(config.get("current-context") or "", str):
        raise KubeconfigError("'current-context' must be a context's name.")
    return config


def _check_server(name: str, server) -> None:
    if not isinstance(server, str) or not server:
        raise KubeconfigError(f"Cluster {name!r} has no server URL.")
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as exc:
        raise KubeconfigError(f"The server of cluster {name!r} is not a URL ({exc}).") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise KubeconfigError(
            f"The server of cluster {name!r} must be an https:// (or http://) URL with a host."
        )


def parse_kubeconfig(text: str) -> dict:
    """Check that a kubeconfig is self-contained and names a usable context."""
    config = _load(text)
    contexts = {c["name"]: c.get("context") or {} for c in config.get("contexts") or []}
    current = config.get("current-context") or (next(iter(contexts)) if contexts else None)
    if not current or current not in contexts:
        raise KubeconfigError(
            "The kubeconfig has no current-context that names one of its contexts."
        )
    clusters = {c["name"]: c.get("cluster") or {} for c in config.get("clusters") or []}
    if contexts[current].get("cluster") not in clusters:
        raise KubeconfigError(
            f"Context {current!r} names a cluster the kubeconfig does not define."
        )
    _check_server(
        contexts[current]["cluster"], clusters[contexts[current]["cluster"]].get("server")
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
    config = _load(text)
    for section in ("clusters", "users"):
        for entry in config.get(section) or []:
            body = entry.get(section[:-1]) or {}
            for file_key, data_key in FILE_KEYS.items():
                if body.get(file_key):
                    if not isinstance(body[file_key], str):
                        raise KubeconfigError(f"{file_key} of {entry['name']!r} is not a path.")
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


def api_client(kubeconfig: str, pool_size: int = 4) -> k8s.ApiClient:
    """A client for the kubeconfig's current context.

    ``pool_size`` is the urllib3 pool: raise it for parallel requests, or they
    silently queue behind the default few connections.
    """
    config = parse_kubeconfig(kubeconfig)
    configuration = k8s.Configuration()
    try:
        load_kube_config_from_dict(config, client_configuration=configuration, persist_config=False)
    except ConfigException as exc:
        raise KubeconfigError(f"The kubeconfig cannot be used: {exc}") from None
    except (ValueError, TypeError, AttributeError, KeyError):  # odd shapes inside entries
        raise KubeconfigError(
            "The kubeconfig cannot be used: one of its entries has an unexpected shape "
            "(a list or a text where a mapping belongs, or a missing field)."
        ) from None
    # Set before the ApiClient exists: it builds its connection pool from these.
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False
    return k8s.ApiClient(configuration)


def explain(
    exc: BaseException, server: str = "the API server", timeout: float = CONNECT_TIMEOUT
) -> str:
    """One sentence on why a call to a cluster failed, for a person to act on
    (``timeout``: the seconds the call was given, named when it timed out)."""
    if isinstance(exc, KubeconfigError):
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
