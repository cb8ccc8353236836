"""The pieces the providers share: error translation, part buffering, streaming reads,
and the custom CA file."""

from __future__ import annotations

import io
import os
import socket
import ssl
import stat
import tarfile

import pytest

from locations.providers import (
    AccessDenied,
    BadCredentials,
    BucketMissing,
    ClockSkew,
    Misconfigured,
    NotFound,
    StorageError,
    TLSFailure,
    Unreachable,
)
from locations.providers.common import CAFile, PartWriter, stream
from locations.providers.errors import CLOCK_SKEW_MESSAGE, network_error, s3_error, scrub

URL = "https://s3.example.com"


def _refused() -> ConnectionRefusedError:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connecting is refused
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2)
        except ConnectionRefusedError as exc:
            return exc
    raise AssertionError("expected a refused connection")


def test_a_refused_connection_deep_in_sdk_wrappers_is_named():
    from botocore.exceptions import EndpointConnectionError
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    inner = NewConnectionError(None, "Failed to establish a new connection")
    inner.__cause__ = _refused()
    wrapped = EndpointConnectionError(endpoint_url=URL, error=MaxRetryError(None, URL, inner))
    error = network_error(wrapped, URL, has_ca=False)
    assert isinstance(error, Unreachable)
    assert str(error) == f"Cannot reach {URL} (connection refused)"


@pytest.mark.parametrize(
    ("exc", "problem"),
    [
        (socket.gaierror(-2, "Name or service not known"), "host name not found"),
        (TimeoutError("timed out"), "timed out"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset"),
        (OSError("Failed to resolve 'minio.invalid'"), "host name not found"),
    ],
)
def test_connection_problems_are_named(exc, problem):
    outer = RuntimeError("request failed")
    outer.__context__ = exc
    assert str(network_error(outer, URL, False)) == f"Cannot reach {URL} ({problem})"


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_message = message
    return exc


@pytest.mark.parametrize(
    ("verify_message", "has_ca", "end"),
    [
        (
            "self-signed certificate in certificate chain",
            True,
            "the certificate is not signed by the custom CA bundle",
        ),
        (
            "unable to get local issuer certificate",
            False,
            "the certificate is not signed by the system CAs",
        ),
        (
            "Hostname mismatch, certificate is not valid for 'x'.",
            True,
            "the certificate does not match the host name",
        ),
        ("certificate has expired", False, "the certificate has expired"),
    ],
)
def test_tls_verification_failures_are_explained(verify_message, has_ca, end):
    error = network_error(_verify_error(verify_message), URL, has_ca)
    assert isinstance(error, TLSFailure)
    assert str(error) == f"TLS verification of {URL} failed: {end}"


def test_tls_to_a_plain_http_port_is_explained():
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    assert str(network_error(exc, URL, False)).endswith(
        "does not speak TLS on this port (use http://)"
    )


def test_other_errors_are_not_network_errors():
    assert network_error(ValueError("bad"), URL, False) is None


def test_scrub_removes_every_secret():
    text = "key=abcd1234 token=zz secret=abcd1234"
    assert scrub(text, ["abcd1234", None, ""]) == "key=*** token=zz secret=***"


@pytest.mark.parametrize(
    ("code", "operation", "kind", "message"),
    [
        (
            "InvalidAccessKeyId",
            "PutObject",
            BadCredentials,
            "The access key is not valid for this endpoint (InvalidAccessKeyId)",
        ),
        (
            "SignatureDoesNotMatch",
            "PutObject",
            BadCredentials,
            "The secret key does not match the access key (SignatureDoesNotMatch)",
        ),
        ("RequestTimeTooSkewed", "PutObject", ClockSkew, CLOCK_SKEW_MESSAGE),
        ("NoSuchBucket", "ListObjectsV2", BucketMissing, "Bucket 'b' does not exist"),
        ("NoSuchKey", "GetObject", NotFound, "Object 'k' does not exist in bucket 'b'"),
        (
            "AccessDenied",
            "PutObject",
            AccessDenied,
            "Access denied to bucket 'b': the credentials lack s3:PutObject",
        ),
        (
            "AccessDenied",
            "UploadPart",
            AccessDenied,
            "Access denied to bucket 'b': the credentials lack s3:PutObject",
        ),
        (
            "AccessDenied",
            "ListObjectsV2",
            AccessDenied,
            "Access denied to bucket 'b': the credentials lack s3:ListBucket",
        ),
        (
            "AccessDenied",
            "DeleteObject",
            AccessDenied,
            "Access denied to bucket 'b': the credentials lack s3:DeleteObject",
        ),
        (
            "403",
            "HeadObject",
            AccessDenied,
            "Access denied to bucket 'b': the credentials lack s3:GetObject",
        ),
        (
            "AuthorizationHeaderMalformed",
            "PutObject",
            Misconfigured,
            "Bucket 'b' is not in region 'us-east-1' (AuthorizationHeaderMalformed): set the location's region to the bucket's",
        ),
    ],
)
def test_s3_error_codes_become_sentences(code, operation, kind, message):
    error = s3_error(code, operation, "b", "k", None, "us-east-1")
    assert type(error) is kind
    assert str(error) == message


@pytest.mark.parametrize(
    ("code", "kind", "start"),
    [
        ("AccessDenied", AccessDenied, "STS refused AssumeRole (AccessDenied): check that the"),
        ("InvalidClientTokenId", BadCredentials, "The base credentials used to assume the role"),
        ("ValidationError", Misconfigured, "STS rejected the AssumeRole request"),
    ],
)
def test_sts_errors_become_sentences(code, kind, start):
    from locations.providers.s3 import _sts_error

    error = _sts_error(code, "1 validation error detected")
    assert type(error) is kind
    assert str(error).startswith(start)


def test_unknown_s3_codes_are_left_to_the_caller():
    assert s3_error("SlowDown", "PutObject", "b", "k", 503, "us-east-1") is None


# PartWriter ---------------------------------------------------------------------------


class MemoryWriter(PartWriter):
    """A store in a list: records the calls a provider would make."""

    part_size = 10

    def __init__(self, fail_on_part: int | None = None):
        super().__init__()
        self.calls: list[tuple] = []
        self.fail_on_part = fail_on_part

    def _put_whole(self, data):
        self.calls.append(("whole", data))

    def _begin(self):
        self.calls.append(("begin",))

    def _put_part(self, number, data):
        if number == self.fail_on_part:
            raise StorageError("part failed")
        self.calls.append(("part", number, data))

    def _commit(self):
        self.calls.append(("commit",))

    def _cancel(self):
        self.calls.append(("cancel",))


@pytest.mark.parametrize("size", [0, 1, 10])
def test_an_object_of_at_most_one_part_is_one_request(size):
    writer = MemoryWriter()
    with writer:
        writer.write(b"x" * size)
    assert writer.calls == [("whole", b"x" * size)]
    assert writer.bytes_written == size


def test_parts_are_sent_as_they_fill_and_the_last_is_never_empty():
    writer = MemoryWriter()
    with writer:
        for _ in range(4):
            writer.write(b"abcde")  # 20 bytes = exactly two parts
        assert writer.calls == [("begin",), ("part", 1, b"abcdeabcde")]
    assert writer.calls[-2:] == [("part", 2, b"abcdeabcde"), ("commit",)]
    writer.close()  # closing twice is harmless
    assert writer.calls.count(("commit",)) == 1
    with pytest.raises(ValueError):
        writer.write(b"late")


def test_a_large_write_is_split_into_parts():
    writer = MemoryWriter()
    writer.write(bytes(range(35)))
    assert [c[1] for c in writer.calls if c[0] == "part"] == [1, 2, 3]
    writer.close()
    assert writer.calls[-2] == ("part", 4, bytes(range(30, 35)))


def test_leaving_with_an_error_cancels_the_upload():
    writer = MemoryWriter()
    with pytest.raises(RuntimeError), writer:
        writer.write(b"x" * 25)
        raise RuntimeError
    assert writer.calls[-1] == ("cancel",)
    assert ("commit",) not in writer.calls


def test_a_failed_part_cancels_the_upload_and_propagates():
    writer = MemoryWriter(fail_on_part=2)
    with pytest.raises(StorageError, match="part failed"), writer:
        writer.write(b"x" * 35)
    assert writer.calls == [("begin",), ("part", 1, b"x" * 10), ("cancel",)]


def test_an_aborted_small_object_makes_no_request():
    writer = MemoryWriter()
    with pytest.raises(RuntimeError), writer:
        writer.write(b"tiny")
        raise RuntimeError
    assert writer.calls == []


# Streaming reads ----------------------------------------------------------------------


def test_a_chunk_stream_reads_like_a_file_and_feeds_tarfile():
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        for i in range(5):
            data = os.urandom(70_000)
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = payload.getvalue()
    chunks = (raw[i : i + 777] for i in range(0, len(raw), 777))
    closed = []
    with (
        stream(chunks, on_close=lambda: closed.append(1)) as reader,
        tarfile.open(fileobj=reader, mode="r|gz") as tar,
    ):
        names = [member.name for member in tar]
    assert names == [f"f{i}" for i in range(5)]
    assert closed == [1]


def test_read_all_and_read_sizes_cross_chunk_boundaries():
    reader = stream(iter([b"ab", b"", b"cde", b"f"]))
    assert reader.read(4) == b"abcd"
    assert reader.read() == b"ef"
    assert reader.read() == b""


def test_a_mid_stream_sdk_error_becomes_a_storage_error():
    def chunks():
        yield b"first"
        raise ConnectionResetError(104, "Connection reset by peer")

    reader = stream(chunks(), translate=lambda exc: network_error(exc, URL, False))
    assert reader.read(5) == b"first"
    with pytest.raises(Unreachable, match="connection reset"):
        reader.read(5)


# The custom CA bundle -----------------------------------------------------------------


def _ca_pem() -> str:
    from tests.integration.provider_support import make_ca, pem

    return pem(make_ca("unit test CA")[1])


def test_a_ca_bundle_becomes_a_private_file_removed_on_close():
    ca = CAFile(_ca_pem())
    assert ca.verify == ca.path
    assert stat.S_IMODE(os.stat(ca.path).st_mode) == 0o600
    with open(ca.path) as handle:
        assert handle.read().startswith("-----BEGIN CERTIFICATE-----")
    ca.close()
    assert not os.path.exists(ca.path)
    ca.close()


def test_no_ca_bundle_means_the_system_cas():
    ca = CAFile("  ")
    assert ca.path is None and ca.verify is True


def test_an_invalid_ca_bundle_is_refused():
    with pytest.raises(Misconfigured, match="not valid"):
        CAFile("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----")
