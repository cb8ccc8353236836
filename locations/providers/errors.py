"""Turning SDK and socket failures into sentences a person can act on.

Each provider module knows its SDK's error codes; what they share lives here:
finding the socket or TLS cause inside a chain of wrapped exceptions, naming a
denied operation, and scrubbing credentials out of any text that came from a
server before it reaches a message.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterable, Iterator

from backups.engine.storage.base import (
    AccessDenied,
    BadCredentials,
    BucketMissing,
    ClockSkew,
    NotFound,
    StorageError,
    TLSFailure,
    Unreachable,
)


class InvalidBucketName(StorageError):
    """The bucket or container name breaks the store's naming rules (no request made)."""

    reason = "invalid_bucket_name"


class Misconfigured(StorageError):
    """The settings cannot work as given (missing endpoint, bad CA PEM, bad key file...)."""

    reason = "misconfigured"


class Inconsistent(StorageError):
    """The store answered, but not as an object store should (validation's probe)."""

    reason = "inconsistent"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: ``__cause__``, ``__context__``, and the
    exceptions SDKs tuck into ``args``, ``reason`` or ``kwargs['error']``."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += [getattr(current, "inner_exception", None)]
        kwargs = getattr(current, "kwargs", None)
        if isinstance(kwargs, dict):
            nested.append(kwargs.get("error"))
        nested += list(getattr(current, "args", ()) or ())
        todo += [item for item in nested if isinstance(item, BaseException)]


def find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((item for item in causes(exc) if isinstance(item, kind)), None)


def _text(exc: BaseException) -> str:
    return " ".join(str(item) for item in causes(exc)).lower()


def tls_problem(exc: BaseException) -> str | None:
    """Why TLS failed, as the end of a sentence, or None if this is not a TLS failure."""
    verify = find(exc, ssl.SSLCertVerificationError)
    text = _text(exc)
    if verify is not None or "certificate verify failed" in text:
        detail = (getattr(verify, "verify_message", "") or text).lower()
        if "hostname" in detail or "ip address mismatch" in detail:
            return "the certificate does not match the host name"
        if "expired" in detail:
            return "the certificate has expired"
        return "the certificate is not signed by {trusted}"
    if any(
        isinstance(item, ssl.SSLError) or "SSLError" in type(item).__name__ for item in causes(exc)
    ):
        if "wrong version number" in text or "record layer failure" in text:
            return "the server does not speak TLS on this port (use http://)"
        return "the TLS handshake failed"
    return None


def connection_problem(exc: BaseException) -> str | None:
    """Why a connection failed ("connection refused", ...), or None if it did not."""
    for item in causes(exc):
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return "host name not found"
        if isinstance(item, ConnectionResetError):
            return "connection reset"
        if isinstance(item, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(item, OSError) and item.errno == errno.ENETUNREACH:
            return "network unreachable"
    text = _text(exc)
    for needle, problem in (
        ("connection refused", "connection refused"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("failed to resolve", "host name not found"),
        ("timed out", "timed out"),
        ("connection reset", "connection reset"),
        ("connection aborted", "connection reset"),
        ("remote end closed connection", "connection closed by the server"),
    ):
        if needle in text:
            return problem
    return None


def network_error(exc: BaseException, url: str, has_ca: bool) -> StorageError | None:
    """A TLSFailure or Unreachable for a transport-level failure (Misconfigured when
    the egress policy stopped the connection), else None."""
    from palette_site.egress import EgressDenied

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, EgressDenied):
            return Misconfigured(str(cause))
        cause = cause.__cause__ or cause.__context__
    tls = tls_problem(exc)
    if tls is not None:
        trusted = "the custom CA bundle" if has_ca else "the system CAs"
        return TLSFailure(f"TLS verification of {url} failed: {tls.format(trusted=trusted)}")
    problem = connection_problem(exc)
    if problem is not None:
        return Unreachable(f"Cannot reach {url} ({problem})")
    return None


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every credential value replaced, for server-provided messages."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


# What each S3 API call needs in IAM terms, to name it when access is denied.
S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}

# S3 error codes shared by boto3 and the minio client, with the sentence to show.
S3_CREDENTIAL_CODES = {
    "InvalidAccessKeyId": "The access key is not valid for this endpoint (InvalidAccessKeyId)",
    "SignatureDoesNotMatch": "The secret key does not match the access key (SignatureDoesNotMatch)",
    "ExpiredToken": "The temporary credentials have expired (ExpiredToken)",
    "InvalidToken": "The session token is not valid (InvalidToken)",
    "TokenRefreshRequired": "The temporary credentials must be refreshed (TokenRefreshRequired)",
    "InvalidClientTokenId": "The access key is not valid for this endpoint (InvalidClientTokenId)",
}
CLOCK_SKEW_MESSAGE = (
    "The clock of this machine and the store's differ by more than 15 minutes "
    "(RequestTimeTooSkewed): synchronise this machine's clock (NTP)"
)


def s3_error(
    code: str, operation: str, bucket: str, key: str | None, status: int | None, region: str
) -> StorageError | None:
    """The StorageError for an S3 error code (boto3's and the minio client's), or None
    for a code with no better sentence than the server's own."""
    if code in S3_CREDENTIAL_CODES:
        return BadCredentials(S3_CREDENTIAL_CODES[code])
    if code == "RequestTimeTooSkewed":
        return ClockSkew(CLOCK_SKEW_MESSAGE)
    if code == "NoSuchBucket":
        return BucketMissing(f"Bucket '{bucket}' does not exist")
    if code in ("NoSuchKey", "NoSuchUpload") or (code == "404" and key):
        return NotFound(f"Object '{key}' does not exist in bucket '{bucket}'")
    if code == "404":
        return BucketMissing(f"Bucket '{bucket}' does not exist")
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        action = S3_ACTIONS.get(operation, operation)
        return AccessDenied(f"Access denied to bucket '{bucket}': the credentials lack {action}")
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301"):
        return Misconfigured(
            f"Bucket '{bucket}' is not in region '{region}' ({code}): "
            "set the location's region to the bucket's"
        )
    if code == "InvalidBucketName":
        return Misconfigured(f"The store rejects the bucket name '{bucket}' (InvalidBucketName)")
    return None
