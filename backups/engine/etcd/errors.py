"""etcd failures as sentences a person can act on.

gRPC reports a failed connection as UNAVAILABLE with the transport's reason in
its details ("Connection refused", "CERTIFICATE_VERIFY_FAILED: ...", an
"Unwrap failed" when the server closed the TLS session with an alert).
``translate`` turns those into one sentence each: "Nothing answers at ...",
"etcd at ... rejected the client certificate", "The server certificate of etcd
at ... is not signed by the given CA", and so on. Where the details are
ambiguous (a closed socket), a bare TLS handshake (``probe_tls``) tells whether
the endpoint speaks TLS, so an http:// / https:// mix-up is named as such.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from backups.engine.etcd.tls import Endpoint, TLSConfig


class EtcdError(Exception):
    """Talking to etcd failed; ``str()`` is the sentence to show, ``reason`` a short code.

    Reasons: config, unreachable, timeout, tls_server, tls_client, tls_mismatch,
    denied, stalled, corrupt, error.
    """

    def __init__(self, message: str, reason: str = "error"):
        super().__init__(message)
        self.reason = reason


_UNREACHABLE = {
    "Connection refused": "connection refused",
    "No route to host": "no route to host",
    "Network is unreachable": "network is unreachable",
    "Connection timed out": "connection timed out",
    "Connection reset by peer": "connection reset",
}


def translate(err: grpc.RpcError, endpoint: Endpoint, tls: TLSConfig, timeout: float) -> EtcdError:
    """One sentence for a failed call (UNAVAILABLE details carry the transport's reason)."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else "") or ""
    url = endpoint.url
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return EtcdError(f"etcd at {url} did not answer within {seconds_text(timeout)}.", "timeout")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return EtcdError(
            f"etcd at {url} refused the request: {details} (with etcd authentication on, "
            "snapshots need a user with the root role).",
            "denied",
        )
    if code != grpc.StatusCode.UNAVAILABLE:
        name = code.name if code is not None else "error"
        return EtcdError(f"etcd at {url} failed: {name}: {details}", "error")
    return _transport_error(details, endpoint, tls, timeout)


def _transport_error(details: str, endpoint: Endpoint, tls: TLSConfig, timeout: float) -> EtcdError:
    url = endpoint.url
    if "resolv" in details or "Domain name not found" in details:
        return EtcdError(
            f"Nothing answers at {url}: the host name {endpoint.host} does not resolve.",
            "unreachable",
        )
    for needle, words in _UNREACHABLE.items():
        if needle in details:
            return EtcdError(f"Nothing answers at {url} ({words}).", "unreachable")
    if "CERTIFICATE_VERIFY_FAILED" in details:
        reason = details.split("CERTIFICATE_VERIFY_FAILED", 1)[1].strip(" :")
        reason = reason.removesuffix(": OK").strip()
        if tls.ca:
            text = f"The server certificate of etcd at {url} is not signed by the given CA"
        else:
            text = (
                f"The server certificate of etcd at {url} is not signed by a CA this machine "
                "trusts; add etcd's CA certificate to the cluster"
            )
        return EtcdError(f"{text} ({reason})." if reason else f"{text}.", "tls_server")
    if "Peer name" in details or "hostname" in details.lower():
        return EtcdError(
            f"The server certificate of etcd at {url} is not valid for the host name "
            f"{endpoint.host}.",
            "tls_server",
        )
    if endpoint.tls and ("TSI_DATA_CORRUPTED" in details or "ALERT" in details):
        # The handshake passed on our side, then etcd closed with an alert: it did not
        # accept (or did not get) a client certificate.
        if tls.has_client_cert:
            return EtcdError(
                f"etcd at {url} rejected the client certificate (it is not signed by a CA "
                "that etcd trusts, or it is not a client certificate).",
                "tls_client",
            )
        return EtcdError(
            f"etcd at {url} requires a client certificate: add the client certificate and "
            "key to the cluster.",
            "tls_client",
        )
    if "Socket closed" in details or "Handshake read failed" in details:
        speaks_tls = probe_tls(endpoint.host, endpoint.port, timeout=min(timeout, 5.0))
        if endpoint.tls and speaks_tls is False:
            plain = url.replace("https://", "http://", 1)
            return EtcdError(
                f"etcd at {url} does not speak TLS: use {plain} (or turn on TLS in etcd).",
                "tls_mismatch",
            )
        if not endpoint.tls and speaks_tls:
            secure = url.replace("http://", "https://", 1)
            return EtcdError(
                f"etcd at {url} expects TLS: use {secure} and add its CA certificate and a "
                "client certificate.",
                "tls_mismatch",
            )
        if endpoint.tls and not tls.has_client_cert:
            return EtcdError(
                f"etcd at {url} closed the connection during the TLS handshake: it probably "
                "requires a client certificate; add the client certificate and key.",
                "tls_client",
            )
        if endpoint.tls:
            return EtcdError(
                f"etcd at {url} closed the connection during the TLS handshake: it probably "
                "rejected the client certificate.",
                "tls_client",
            )
    short = details.split("last error:", 1)[-1].strip() or "unavailable"
    return EtcdError(f"Nothing answers at {url} ({short}).", "unreachable")


def seconds_text(value: float) -> str:
    return "1 second" if value == 1 else f"{value:g} seconds"


def probe_tls(host: str, port: int, *, timeout: float = 5.0) -> bool | None:
    """Does ``host:port`` answer a TLS handshake? None when it cannot be told.

    Used only to explain a failure (http:// against a TLS etcd or the reverse),
    so the server certificate is not verified here and no client key is sent.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            return True
    except ssl.SSLError:
        return False
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return False
    except OSError:
        return None
