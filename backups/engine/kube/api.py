"""Raw GETs against a cluster's API server: bytes in, bytes out, no model objects.

The ``kubernetes`` client turns responses into model objects unless asked not
to, which costs far more than the network; the engine only ever wants the JSON
bytes. Two kinds of failure matter to a backup and are told apart here:

* ``ApiError``: the server answered with an error status (403, 404, 503, ...).
  It concerns one request, so one resource type: the backup goes on, partially
  failed.
* ``ClusterUnreachable``: no answer at all (refused, reset, timed out, TLS).
  The backup cannot go on; the message is one sentence a person can act on.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from urllib.parse import urlencode

import urllib3
from kubernetes.client.exceptions import ApiException

from backups.engine.kube.client import CONNECT_TIMEOUT, api_client, explain, server_of

# A page of 500 objects can take the server a while on a busy cluster.
READ_TIMEOUT = 120
# Transport errors are retried this many times (a pooled keep-alive connection
# that the server closed fails once), then the cluster counts as unreachable.
TRANSPORT_RETRIES = 2
# A busy server answers 429 (or a 5xx) with Retry-After: a GET is tried again after
# that wait (at most BUSY_WAIT seconds each time), as client-go does, this many times.
BUSY_RETRIES = 3
BUSY_WAIT = 5.0


class KubeError(Exception):
    pass


class ApiError(KubeError):
    """The API server answered a request with an error status."""

    def __init__(self, status: int, reason: str, message: str = ""):
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}" + (f": {message}" if message else ""))


class ClusterUnreachable(KubeError):
    """No usable answer from the API server; ``str()`` says why in one sentence."""


def _status_message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    return doc.get("message", "") if isinstance(doc, dict) else ""


def describe_transport_error(
    exc: BaseException,
    server: str,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> str:
    """``kube.client.explain``, plus the cases of a connection that breaks mid-way."""
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return (
            f"The connection to {server} broke off in the middle of a response "
            "(the API server stopped or the network failed)."
        )
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | socket.timeout):
        return f"{server} stopped answering (no data for {read_timeout:g} seconds)."
    return explain(exc, server, timeout=connect_timeout)


class Kube:
    """A thread-safe raw client for one cluster, with ``pool_size`` connections.

    ``connect_timeout`` bounds connecting, ``read_timeout`` the wait for data.
    """

    def __init__(
        self,
        kubeconfig: str,
        pool_size: int = 8,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ):
        self.server = server_of(kubeconfig)
        self.api = api_client(kubeconfig, pool_size=pool_size)
        self.timeout = (connect_timeout, read_timeout)

    @classmethod
    def connect(cls, cluster, pool_size: int = 8) -> Kube:
        """A client for a ``ClusterConnection`` (its kubeconfig and timeouts), held to
        the connection's ``guard`` when it has one."""
        kube = cls(
            cluster.kubeconfig,
            pool_size,
            connect_timeout=cluster.connect_timeout,
            read_timeout=cluster.read_timeout,
        )
        if cluster.guard is not None:
            try:
                cluster.guard(kube.api, cluster.kubeconfig)
            except BaseException:
                kube.close()
                raise
        return kube

    def describe(self, exc: BaseException) -> str:
        """``describe_transport_error`` with this client's server and timeouts."""
        return describe_transport_error(exc, self.server, *self.timeout)

    def close(self) -> None:
        self.api.close()

    def get(self, path: str, query: dict | None = None) -> bytes:
        """GET ``path`` (e.g. ``/api/v1/configmaps``) and return the body's bytes."""
        for attempt in range(TRANSPORT_RETRIES + 1):
            try:
                return self._get_once(path, query)
            except ApiError:
                raise
            except (
                urllib3.exceptions.HTTPError,
                OSError,
                ssl.SSLError,
                ApiException,
            ) as exc:
                # The client wraps TLS failures as ApiException(status=0); a
                # status means the server did answer.
                if isinstance(exc, ApiException) and exc.status:
                    raise ApiError(exc.status, exc.reason or "") from None
                if attempt == TRANSPORT_RETRIES or _is_tls(exc):
                    raise ClusterUnreachable(self.describe(exc)) from None
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, query: dict | None = None):
        return json.loads(self.get(path, query))

    def call(self, method, path, body=None, query=None, content_type=None):
        """One request, no retry: (status, body bytes, reason phrase). Raises the
        client's transport errors (see ``get`` and ``restore/target.py``)."""
        return self._request(method, path, body, query, content_type)[:3]

    def _request(self, method, path, body=None, query=None, content_type=None):
        """``call`` plus the seconds the server asked to wait before trying again
        (None unless it answered 429 or 5xx with Retry-After)."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, _body, _post = self.api.param_serialize(
            method, path, header_params=headers, auth_settings=["BearerToken"]
        )
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        response = self.api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=self.timeout
        )
        return response.status, response.read(), response.reason or "", busy_wait(response)

    def _get_once(self, path: str, query: dict | None) -> bytes:
        for attempt in range(BUSY_RETRIES + 1):
            status, data, reason, wait = self._request("GET", path, query=query)
            if 200 <= status <= 299:
                return data
            if wait is None or attempt == BUSY_RETRIES:
                raise ApiError(status, reason, _status_message(data))
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def busy_wait(response) -> float | None:
    status = response.status
    if status != 429 and not 500 <= status <= 599:
        return None
    value = response.getheader("Retry-After")
    try:
        return min(max(float(value), 0.0), BUSY_WAIT) if value is not None else None
    except ValueError:
        return None


def _is_tls(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError) or (
        "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text
    )
