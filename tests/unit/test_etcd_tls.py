"""etcd endpoints, certificate checks and the sentences for each connection failure."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backups.engine.etcd.errors import EtcdError, translate
from backups.engine.etcd.tls import TLSConfig, check_tls, parse_endpoints

NOW = dt.datetime.now(dt.UTC)


def _cert(days_from=-1, days_to=30):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days_from))
        .not_valid_after(NOW + dt.timedelta(days=days_to))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem, key


def test_endpoints_are_normalized():
    (e,) = parse_endpoints("https://10.0.0.5:2379/")
    assert (e.url, e.target, e.tls) == ("https://10.0.0.5:2379", "10.0.0.5:2379", True)
    (e,) = parse_endpoints("etcd.internal")  # no scheme, no port
    assert e.url == "https://etcd.internal:2379"
    (e,) = parse_endpoints("127.0.0.1:22379", tls_default=False)
    assert e.url == "http://127.0.0.1:22379" and not e.tls
    (e,) = parse_endpoints("https://[::1]:2379")
    assert e.target == "[::1]:2379" and e.url == "https://[::1]:2379"
    many = parse_endpoints("https://a:2379, https://b:2379,")
    assert [e.host for e in many] == ["a", "b"]


@pytest.mark.parametrize("text", ["", " , ", "ftp://x:1", "https://:2379", "https://h:port"])
def test_bad_endpoints_are_refused_with_an_example(text):
    with pytest.raises(EtcdError) as err:
        parse_endpoints(text)
    assert err.value.reason == "config"


def test_valid_pems_pass_and_the_key_never_shows():
    cert, key, _ = _cert()
    tls = check_tls(cert, cert, key)
    assert tls.has_client_cert and tls.ca.startswith(b"-----BEGIN CERTIFICATE")
    assert "PRIVATE" not in repr(tls)
    assert check_tls("", "", "") == TLSConfig()


def test_certificate_problems_are_named_before_connecting():
    cert, key, private = _cert()
    other_cert, other_key, _ = _cert()
    expired, expired_key, _ = _cert(-30, -1)
    future, future_key, _ = _cert(2, 30)
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    cases = {
        "not a PEM certificate": dict(ca="hello"),
        "client key is missing": dict(cert=cert),
        "client certificate is missing": dict(key=key),
        "not a PEM private key": dict(cert=cert, key="-----BEGIN PRIVATE KEY-----\nxx\n"),
        "encrypted with a passphrase": dict(cert=cert, key=encrypted),
        "does not belong to the client certificate": dict(cert=cert, key=other_key),
        "expired on": dict(cert=expired, key=expired_key),
        "not valid before": dict(cert=future, key=future_key),
    }
    for words, kwargs in cases.items():
        with pytest.raises(EtcdError, match=words) as err:
            check_tls(**kwargs)
        assert err.value.reason == "config"
        assert key not in str(err.value) and other_key not in str(err.value)
    assert other_cert  # a valid pair of its own


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
HTTPS = parse_endpoints("https://127.0.0.1:12379")[0]
WITH_CERT = TLSConfig(b"ca", b"cert", b"key")
CA_ONLY = TLSConfig(b"ca")


@pytest.mark.parametrize(
    "code, details, tls, sentence, reason",
    [
        (
            UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:12379: "
            "Failed to connect to remote host: Connection refused",
            WITH_CERT,
            "Nothing answers at https://127.0.0.1:12379 (connection refused).",
            "unreachable",
        ),
        (
            UNAVAILABLE,
            "errors resolving etcd.example:2379: [... Domain name not found]",
            WITH_CERT,
            "Nothing answers at https://127.0.0.1:12379: the host name 127.0.0.1 does not resolve.",
            "unreachable",
        ),
        (
            UNAVAILABLE,
            "last error: UNKNOWN: ipv4:127.0.0.1:12379: Tls handshake failed (TSI_PROTOCOL_FAILURE):"
            " SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:"
            " unable to get local issuer certificate: OK",
            WITH_CERT,
            "The server certificate of etcd at https://127.0.0.1:12379 is not signed by the given "
            "CA (unable to get local issuer certificate).",
            "tls_server",
        ),
        (
            UNAVAILABLE,
            "CERTIFICATE_VERIFY_FAILED: self signed certificate in certificate chain",
            TLSConfig(),
            "The server certificate of etcd at https://127.0.0.1:12379 is not signed by a CA this "
            "machine trusts; add etcd's CA certificate to the cluster (self signed certificate in "
            "certificate chain).",
            "tls_server",
        ),
        (
            UNAVAILABLE,
            "last error: UNAVAILABLE: ipv4:127.0.0.1:12379: Unwrap failed (TSI_DATA_CORRUPTED)",
            WITH_CERT,
            "etcd at https://127.0.0.1:12379 rejected the client certificate (it is not signed "
            "by a CA that etcd trusts, or it is not a client certificate).",
            "tls_client",
        ),
        (
            UNAVAILABLE,
            "last error: UNAVAILABLE: ipv4:127.0.0.1:12379: Unwrap failed (TSI_DATA_CORRUPTED)",
            CA_ONLY,
            "etcd at https://127.0.0.1:12379 requires a client certificate: add the client "
            "certificate and key to the cluster.",
            "tls_client",
        ),
        (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "Deadline Exceeded",
            WITH_CERT,
            "etcd at https://127.0.0.1:12379 did not answer within 10 seconds.",
            "timeout",
        ),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            "etcdserver: permission denied",
            WITH_CERT,
            "etcd at https://127.0.0.1:12379 refused the request: etcdserver: permission denied "
            "(with etcd authentication on, snapshots need a user with the root role).",
            "denied",
        ),
    ],
)
def test_each_failure_has_its_sentence(code, details, tls, sentence, reason):
    err = translate(FakeRpcError(code, details), HTTPS, tls, 10.0)
    assert (str(err), err.reason) == (sentence, reason)
