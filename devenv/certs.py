"""Certificates of a local cluster, made with the `cryptography` package.

Per cluster directory ``pki/``:

- ``ca.crt/key``: the cluster CA (signs the apiserver serving cert and the admin client cert);
- ``apiserver.crt/key``: CN=localhost, SANs localhost, 127.0.0.1 and the service IP 10.0.0.1;
- ``admin.crt/key``: CN=admin, O=system:masters (full access through RBAC);
- ``apiserver-kubelet-client.crt/key``: the apiserver's client certificate towards kubelets;
- ``sa.key/sa.pub``: the EC key pair that signs service-account tokens;
- ``etcd-ca.crt/key``, ``etcd-server.crt/key``, ``etcd-client.crt/key``: etcd's own CA, its
  serving cert, and the client cert that the apiserver (and the console's tests) present.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650
SERVER_SANS = ("localhost", "127.0.0.1", "10.0.0.1")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    path.write_bytes(pem(key))
    path.chmod(0o600)


def _load(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
    )


def new_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA, in memory."""
    key = _key()
    name = _name(cn)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def new_leaf(
    ca_key,
    ca_cert: x509.Certificate,
    cn: str,
    org: str | None = None,
    server: bool = False,
    client: bool = False,
    sans: tuple[str, ...] = SERVER_SANS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate signed by the CA, in memory; a server one names ``sans``."""
    key = _key()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        _builder(_name(cn, org), ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if server:
        names = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def pem(obj) -> bytes:
    """PEM of a certificate or of a private key (PKCS#8, unencrypted)."""
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(directory: Path, stem: str, key, cert) -> None:
    _write_key(directory / f"{stem}.key", key)
    (directory / f"{stem}.crt").write_bytes(pem(cert))


def make_ca(directory: Path, stem: str, cn: str) -> None:
    if not (directory / f"{stem}.crt").exists():
        _write(directory, stem, *new_ca(cn))


def make_leaf(
    directory: Path,
    stem: str,
    ca_stem: str,
    cn: str,
    org: str | None = None,
    server: bool = False,
    client: bool = False,
    sans: tuple[str, ...] = SERVER_SANS,
    out_dir: Path | None = None,
) -> None:
    """Create ``stem.crt/key`` (in ``out_dir``, default ``directory``) once, signed by the CA
    ``ca_stem`` of ``directory``."""
    out_dir = out_dir or directory
    if (out_dir / f"{stem}.crt").exists():
        return
    ca_key = _load(directory / f"{ca_stem}.key")
    ca_cert = x509.load_pem_x509_certificate((directory / f"{ca_stem}.crt").read_bytes())
    leaf = new_leaf(ca_key, ca_cert, cn, org, server=server, client=client, sans=sans)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir, stem, *leaf)


def make_sa_keys(directory: Path) -> None:
    if (directory / "sa.pub").exists():
        return
    key = _key()
    _write_key(directory / "sa.key", key)
    (directory / "sa.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def make_cluster_pki(directory: Path) -> Path:
    """Create (once) every certificate and key a local cluster needs; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    make_ca(directory, "ca", "palette-devenv-ca")
    make_leaf(directory, "apiserver", "ca", "localhost", server=True)
    make_leaf(directory, "admin", "ca", "admin", org="system:masters", client=True)
    # What the apiserver presents to kubelets (logs, exec, attach, port-forward).
    make_leaf(
        directory,
        "apiserver-kubelet-client",
        "ca",
        "kube-apiserver-kubelet-client",
        org="system:masters",
        client=True,
    )
    make_sa_keys(directory)
    make_ca(directory, "etcd-ca", "palette-devenv-etcd-ca")
    make_leaf(directory, "etcd-server", "etcd-ca", "localhost", server=True, client=True)
    make_leaf(directory, "etcd-client", "etcd-ca", "kube-apiserver-etcd-client", client=True)
    return directory
