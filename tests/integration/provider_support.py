"""Helpers for the storage provider tests: locations pointing at the devenv's real
stores, an independent look into each bucket, and a small local TLS server."""

from __future__ import annotations

import collections
import contextlib
import http.server
import ssl
import tempfile
import threading
from dataclasses import dataclass

from devenv import certs
from locations.models import BackupLocation

# Every provider variant the contract tests run against, and the conftest
# fixture that makes its fresh bucket.
STORES = {
    "filesystem": None,
    "minio": "minio_bucket",
    "s3-on-minio": "minio_bucket",
    "s3-moto": "s3_bucket",
    "s3-sts": "s3_bucket",
    "gcs": "gcs_bucket",
    "azure-key": "azure_container",
    "azure-connection-string": "azure_container",
}


def location(kind: str, env: dict, bucket: str = "", **extra) -> BackupLocation:
    """An unsaved BackupLocation of ``kind`` (a key of STORES) on ``bucket``."""
    env = collections.defaultdict(str, env)
    minio_keys = {"access_key": env["MINIO_ACCESS_KEY"], "secret_key": env["MINIO_SECRET_KEY"]}
    moto_keys = {"access_key": env["S3_ACCESS_KEY"], "secret_key": env["S3_SECRET_KEY"]}
    fields = {
        "filesystem": {"provider": "filesystem", "credential_mode": "none"},
        "minio": {
            "provider": "minio",
            "endpoint_url": env["MINIO_ENDPOINT"],
            "force_path_style": True,
            "credentials": minio_keys,
        },
        "s3-on-minio": {
            "provider": "s3",
            "endpoint_url": env["MINIO_ENDPOINT"],
            "force_path_style": True,
            "credentials": minio_keys,
        },
        "s3-moto": {
            "provider": "s3",
            "endpoint_url": env["S3_ENDPOINT"],
            "region": env.get("S3_REGION", "us-east-1"),
            "force_path_style": True,
            "credentials": moto_keys,
        },
        "s3-sts": {
            "provider": "s3",
            "endpoint_url": env["S3_ENDPOINT"],
            "region": env.get("S3_REGION", "us-east-1"),
            "force_path_style": True,
            "credential_mode": "sts",
            "role_arn": env["STS_ROLE_ARN"],
            "external_id": "palette-test-external-id",
            "credentials": moto_keys,
        },
        "gcs": {"provider": "gcs", "endpoint_url": env["GCS_ENDPOINT"]},
        "azure-key": {
            "provider": "azure",
            "endpoint_url": env["AZURE_BLOB_ENDPOINT"],
            "credentials": {
                "account_name": env["AZURE_ACCOUNT_NAME"],
                "account_key": env["AZURE_ACCOUNT_KEY"],
            },
        },
        "azure-connection-string": {
            "provider": "azure",
            "credentials": {"connection_string": env["AZURE_CONNECTION_STRING"]},
        },
    }[kind]
    if kind == "filesystem":
        fields["path"] = bucket
    else:
        fields["bucket"] = bucket
    fields.update(extra)
    return BackupLocation(name=f"test-{kind}", **fields)


def secrets_of(env: dict) -> list[str]:
    """The credential values of the devenv, which no message or log may contain."""
    keys = ("MINIO_SECRET_KEY", "S3_SECRET_KEY", "AZURE_ACCOUNT_KEY")
    # moto's secret may equal its access key, which requests carry in the clear.
    public = {env.get("MINIO_ACCESS_KEY"), env.get("S3_ACCESS_KEY")}
    return [env[k] for k in keys if env.get(k) and env[k] not in public]


@dataclass
class Peek:
    """Lists a bucket with the test's own SDK client, not with the provider under test."""

    request: object
    kind: str
    bucket: str

    def keys(self) -> list[str]:
        fixture = STORES[self.kind]
        if fixture is None:
            import os

            return sorted(
                os.path.relpath(os.path.join(d, f), self.bucket)
                for d, _, files in os.walk(self.bucket)
                for f in files
            )
        if fixture in ("minio_bucket", "s3_bucket"):
            s3 = self.request.getfixturevalue(
                "minio_s3" if fixture == "minio_bucket" else "moto_s3"
            )
            answer = s3.list_objects_v2(Bucket=self.bucket)
            return sorted(o["Key"] for o in answer.get("Contents", []))
        if fixture == "gcs_bucket":
            client = self.request.getfixturevalue("gcs_client")
            return sorted(b.name for b in client.list_blobs(self.bucket))
        service = self.request.getfixturevalue("azure_blob_service")
        return sorted(b.name for b in service.get_container_client(self.bucket).list_blobs())

    def directories(self) -> list[str]:
        """Folders left in a filesystem location (empty ones included)."""
        import os

        return sorted(os.path.relpath(d, self.bucket) for d, _, _ in os.walk(self.bucket))[1:]


# TLS ----------------------------------------------------------------------------------


def make_ca(name: str):
    """A CA in memory: (key, certificate)."""
    return certs.new_ca(name)


def make_server_cert(ca_key, ca_cert):
    """A certificate for 127.0.0.1 and localhost signed by the CA; returns PEM (cert, key)."""
    key, cert = certs.new_leaf(
        ca_key, ca_cert, "127.0.0.1", server=True, sans=("localhost", "127.0.0.1")
    )
    return certs.pem(cert), certs.pem(key)


def pem(cert) -> str:
    return certs.pem(cert).decode()


class NotFoundHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request "no such bucket" in the dialects of S3, GCS and Azure:
    reaching it proves the TLS handshake succeeded."""

    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" as S3 clients want

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        code = b"ContainerNotFound" if self.headers.get("x-ms-version") else b"NoSuchBucket"
        body = b"<Error><Code>" + code + b"</Code><Message>It does not exist</Message></Error>"
        self.send_response(404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-ms-error-code", "ContainerNotFound")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def tls_server(cert_pem: bytes, key_pem: bytes):
    """An HTTPS server on 127.0.0.1 with the given certificate; yields its URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile() as cert_file, tempfile.NamedTemporaryFile() as key_file:
        cert_file.write(cert_pem)
        key_file.write(key_pem)
        cert_file.flush()
        key_file.flush()
        context.load_cert_chain(cert_file.name, key_file.name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFoundHandler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# A stand-in for Google's OAuth token endpoint -------------------------------------------


def service_account_json(token_uri: str) -> tuple[str, object]:
    """A service-account key file (JSON text) with a fresh RSA key, and its public key."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "palette-test",
        "private_key_id": "0123456789abcdef",
        "private_key": private,
        "client_email": "backup@palette-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    return json.dumps(info), key.public_key()


class TokenEndpoint(http.server.BaseHTTPRequestHandler):
    """Checks the JWT-bearer assertion's RS256 signature with the service account's
    public key, then answers as ``server.mode`` says: a token, or Google's errors."""

    def do_POST(self) -> None:
        import base64
        import json
        from urllib.parse import parse_qs

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        header, claims, signature = form["assertion"][0].split(".")
        pad = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # noqa: E731
        self.server.public_key.verify(
            pad(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        self.server.assertions.append(json.loads(pad(claims)))
        answers = {
            "ok": (200, {"access_token": "token-1", "token_type": "Bearer", "expires_in": 3600}),
            "revoked": (
                400,
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
            ),
            "skewed": (
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: Token must be a short-lived token "
                    "(60 minutes) and in a reasonable timeframe. Check your iat and exp values "
                    "in the JWT claim.",
                },
            ),
        }
        status, body = answers[self.server.mode]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def token_endpoint(public_key=None):
    """Yields the server; set ``.public_key`` and ``.mode`` ("ok", "revoked", "skewed")."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    server.public_key, server.mode, server.assertions = public_key, "ok", []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
