"""Where an etcd is and the certificates to reach it with, checked before any connection.

``parse_endpoints`` reads a cluster's etcd endpoint (one URL or a comma-separated
list). ``check_tls`` validates the PEM strings stored on the Cluster with
``cryptography``, so an expired certificate or a key that belongs to another
certificate is named as such instead of surfacing as a TLS alert. ``TLSConfig``
builds gRPC channel credentials from the PEM bytes (no temp files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from backups.engine.etcd.errors import EtcdError

DEFAULT_PORT = 2379


@dataclass(frozen=True)
class Endpoint:
    url: str  # normalized: scheme://host:port
    scheme: str  # "https" or "http"
    host: str
    port: int

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def parse_endpoints(text: str, *, tls_default: bool = True) -> list[Endpoint]:
    """``https://10.0.0.5:2379`` (or a comma-separated list of them) -> Endpoints.

    A bare ``host:port`` is https when ``tls_default`` (certificates are
    configured), else http. The port defaults to 2379.
    """
    endpoints = []
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        raw = item if "://" in item else f"{'https' if tls_default else 'http'}://{item}"
        try:
            parts = urlsplit(raw)
            port = parts.port or DEFAULT_PORT
        except ValueError as err:
            raise EtcdError(f"The etcd endpoint {item!r} is not a URL ({err}).", "config") from err
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise EtcdError(
                f"The etcd endpoint {item!r} is not an http:// or https:// URL with a host, "
                "for example https://10.0.0.5:2379.",
                "config",
            )
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        endpoints.append(Endpoint(f"{scheme}://{shown}:{port}", scheme, host, port))
    if not endpoints:
        raise EtcdError("The cluster has no etcd endpoint.", "config")
    return endpoints


@dataclass(frozen=True)
class TLSConfig:
    """PEM bytes; any may be None. ``repr`` never shows the key."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = field(default=None, repr=False)

    @property
    def has_client_cert(self) -> bool:
        return bool(self.cert and self.key)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def _pem(value: str | bytes | None) -> bytes | None:
    if not value:
        return None
    data = value.encode() if isinstance(value, str) else value
    return data.strip() + b"\n" if data.strip() else None


def check_tls(ca=None, cert=None, key=None, *, now: datetime | None = None) -> TLSConfig:
    """Validate PEM strings (or bytes) and return a TLSConfig; raise EtcdError(config).

    Catches what would otherwise be an opaque handshake failure: a CA or
    certificate that is not PEM, a certificate without its key (or the reverse),
    an encrypted key, a key of another certificate, an expired certificate.
    """
    ca_b, cert_b, key_b = _pem(ca), _pem(cert), _pem(key)
    now = now or datetime.now(UTC)
    if ca_b:
        try:
            x509.load_pem_x509_certificates(ca_b)
        except ValueError as err:
            raise EtcdError(
                "The etcd CA certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----).",
                "config",
            ) from err
    if bool(cert_b) != bool(key_b):
        missing = "key" if cert_b else "certificate"
        raise EtcdError(
            f"The etcd client {missing} is missing: give both the client certificate and its key.",
            "config",
        )
    if cert_b and key_b:
        try:
            certificate = x509.load_pem_x509_certificates(cert_b)[0]
        except ValueError as err:
            raise EtcdError(
                "The etcd client certificate is not a PEM certificate.", "config"
            ) from err
        try:
            private_key = serialization.load_pem_private_key(key_b, password=None)
        except TypeError as err:
            raise EtcdError(
                "The etcd client key is encrypted with a passphrase; store it unencrypted.",
                "config",
            ) from err
        except (ValueError, UnsupportedAlgorithm) as err:
            raise EtcdError("The etcd client key is not a PEM private key.", "config") from err

        def spki(public_key) -> bytes:
            return public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )

        if spki(certificate.public_key()) != spki(private_key.public_key()):
            raise EtcdError(
                "The etcd client key does not belong to the client certificate.", "config"
            )
        if certificate.not_valid_after_utc < now:
            raise EtcdError(
                "The etcd client certificate expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC.",
                "config",
            )
        if certificate.not_valid_before_utc > now:
            raise EtcdError(
                "The etcd client certificate is not valid before "
                f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check the clocks).",
                "config",
            )
    return TLSConfig(ca_b, cert_b, key_b)


def tls_of(etcd) -> TLSConfig:
    """The checked TLS settings of an ``EtcdEndpoint``."""
    return check_tls(etcd.ca, etcd.cert, etcd.key)
