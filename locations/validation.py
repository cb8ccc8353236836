"""Proving that a location works: names first, then a probe object's round trip.

``validate(location)`` checks the bucket name and endpoint without touching the
network, then writes a uniquely named probe object under the prefix's
``metadata/`` folder (which Velero tolerates), reads it back, finds it in a
listing, deletes it and checks that it is gone. Whatever fails, the probe is
deleted again. It also warns when folders Velero does not know sit under the
prefix. ``validate_and_record`` stores the outcome on the location's row.

Every failure is a ValidationResult whose ``message`` a person can act on and
whose ``reason`` is the StorageError's code; no message or log line ever holds
a credential.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db.models import Q
from django.utils import timezone

from backups.engine.storage.base import (
    BadCredentials,
    ClockSkew,
    StorageError,
    TLSFailure,
    Unreachable,
)
from backups.engine.storage.layout import VELERO_TOP_LEVEL, Layout
from backups.engine.words import counted
from locations.providers import get_provider
from locations.providers.errors import Inconsistent, InvalidBucketName, Misconfigured

logger = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    ok: bool
    message: str
    reason: str = "ok"
    warnings: list[str] = field(default_factory=list)


# Bucket and container names, checked before any request ----------------------------------

_S3_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_GCS_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_AZURE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")


def _is_ip(name: str) -> bool:
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(name)
        return True
    return False


def _length(kind: str, name: str, low: int, high: int) -> None:
    if not low <= len(name) <= high:
        raise InvalidBucketName(
            f"{kind} name '{name}' must be {low} to {high} characters long (it has {len(name)})"
        )


def check_s3_bucket(name: str) -> None:
    """Amazon's DNS-compliant bucket rules (MinIO applies the same)."""
    _length("Bucket", name, 3, 63)
    if not _S3_NAME.match(name):
        raise InvalidBucketName(
            f"Bucket name '{name}' may contain only lowercase letters, digits, dots and "
            "hyphens, and must begin and end with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        raise InvalidBucketName(
            f"Bucket name '{name}' must not contain two adjacent dots or a dot next to a hyphen"
        )
    if _is_ip(name):
        raise InvalidBucketName(f"Bucket name '{name}' must not be an IP address")
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            raise InvalidBucketName(f"Bucket name '{name}' must not begin with '{prefix}'")
    for suffix in ("-s3alias", "--ol-s3", "--x-s3", ".mrap", "--table-s3"):
        if name.endswith(suffix):
            raise InvalidBucketName(f"Bucket name '{name}' must not end with '{suffix}'")


def check_gcs_bucket(name: str) -> None:
    """Google's rules: 3-63 characters (up to 222 with dots, 63 per dot-separated part)."""
    _length("Bucket", name, 3, 222 if "." in name else 63)
    if not _GCS_NAME.match(name):
        raise InvalidBucketName(
            f"Bucket name '{name}' may contain only lowercase letters, digits, dashes, "
            "underscores and dots, and must begin and end with a letter or digit"
        )
    if any(len(part) > 63 for part in name.split(".")):
        raise InvalidBucketName(f"Each dot-separated part of '{name}' must be at most 63 long")
    if ".." in name:
        raise InvalidBucketName(f"Bucket name '{name}' must not contain two adjacent dots")
    if _is_ip(name):
        raise InvalidBucketName(f"Bucket name '{name}' must not be an IP address")
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        raise InvalidBucketName(
            f"Bucket name '{name}' must not begin with 'goog' nor contain 'google'"
        )


def check_azure_container(name: str) -> None:
    """Azure's rules: 3-63 lowercase letters, digits and single hyphens, not at either end."""
    _length("Container", name, 3, 63)
    if not _AZURE_NAME.match(name):
        raise InvalidBucketName(
            f"Container name '{name}' may contain only lowercase letters, digits and single "
            "hyphens, and must begin and end with a letter or digit"
        )


BUCKET_RULES = {
    "s3": check_s3_bucket,
    "minio": check_s3_bucket,
    "gcs": check_gcs_bucket,
    "azure": check_azure_container,
}


def check_settings(location) -> None:
    """Everything that can be checked without a request; raises StorageError."""
    if location.provider == "filesystem":
        from locations.placement import allowed_directory

        allowed_directory(location.path)  # under the server's roots, on the real path
        return
    if location.provider not in BUCKET_RULES:
        raise Misconfigured(f"Unknown storage provider {location.provider!r}")
    if not location.bucket:
        what = "container" if location.provider == "azure" else "bucket"
        raise InvalidBucketName(f"Set the {what} name")
    BUCKET_RULES[location.provider](location.bucket)
    if location.endpoint_url:
        parts = urlsplit(location.endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Misconfigured(
                f"The endpoint URL '{location.endpoint_url}' must begin with http:// or "
                "https:// and name a host"
            )
        with contextlib.suppress(ValueError):
            parts.port  # noqa: B018 (raises ValueError on a bad port)
            return
        raise Misconfigured(f"The endpoint URL '{location.endpoint_url}' has an invalid port")
    if location.provider == "minio":
        raise Misconfigured("MinIO needs its endpoint URL, such as https://minio.example.com:9000")


# The probe ------------------------------------------------------------------------------


def _where(location) -> str:
    if location.provider == "filesystem":
        return f"directory '{location.path}'"
    what = "container" if location.provider == "azure" else "bucket"
    return f"{what} '{location.bucket}'"


# A write that failed so is not in the store: nothing to clean up after it.
NO_REQUEST_STORED = (Unreachable, TLSFailure, BadCredentials, ClockSkew, Misconfigured)


def _round_trip(provider, key: str, payload: bytes) -> None:
    """Read the probe back, find it in a listing, delete it, check that it is gone."""
    back = provider.get_bytes(key)
    if back != payload:
        raise Inconsistent(
            f"The probe object read back differs from what was written ({len(back)} bytes "
            f"instead of {len(payload)}): something between the console and the store alters data"
        )
    if key not in {info.key for info in provider.list(key.rsplit("/", 1)[0] + "/")}:
        raise Inconsistent(
            "The probe object was written and read back, but listing its folder did not "
            "return it: check the list permission (s3:ListBucket or equivalent)"
        )
    provider.delete(key)
    if provider.exists(key):
        raise Inconsistent("The probe object still exists after it was deleted")


def _remove(provider, key: str) -> bool:
    """Delete the probe after a failure; True when it is gone (or was never there)."""
    try:
        provider.delete(key)
    except Exception:
        return False
    try:
        return not provider.exists(key)
    except StorageError:
        return True  # the delete succeeded; checking needs a permission we lack


def _unknown_folders(provider, layout: Layout) -> list[str]:
    if hasattr(provider, "list_folders"):
        return sorted(set(provider.list_folders(layout.prefix)) - set(VELERO_TOP_LEVEL))
    prefix = layout.prefix + "/" if layout.prefix else ""
    return layout.unknown_top_level(info.key for info in provider.list(prefix))


def _unknown_warning(location, layout: Layout, unknown: list[str]) -> str:
    """Names only what is inside the location, and only a few of them; a local
    directory's folders are counted, not named (the server's disk is not the
    tenant's to browse)."""
    if location.provider == "filesystem":
        under = f"prefix '{layout.prefix}' of the directory" if layout.prefix else "the directory"
        found = f"{counted(len(unknown), 'folder')} that Velero does not know"
    else:
        under = f"prefix '{layout.prefix}'" if layout.prefix else "the bucket's root"
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        found = f"Folders Velero does not know ({', '.join(n[:64] for n in unknown[:5])}{more})"
    return (
        f"{found} are under {under}. Velero would mark this location Unavailable; move them or "
        "choose another prefix."
    )


def _protection(location, provider) -> list[str]:
    """The bucket's object lock against the location's (read only for a locking location:
    a narrow IAM policy need not allow it otherwise), and a KMS key that wraps."""
    from locations import keys, object_lock

    warnings = []
    if location.locks:
        error, warning = object_lock.bucket_problem(location, provider.lock_config())
        if error:
            raise Misconfigured(error)
        warnings += [warning] if warning else []
    if location.encrypt and location.kms_key_id:
        keys.check_kms(location)
    return warnings


def validate(location) -> ValidationResult:
    """Check ``location`` end to end; never raises for a storage problem."""
    try:
        check_settings(location)
    except StorageError as exc:
        return ValidationResult(False, str(exc), exc.reason)

    layout = Layout(location.prefix)
    key = f"{layout.probe_dir}palette-validation-{uuid.uuid4().hex}.txt"
    payload = f"palette validation probe {secrets.token_hex(16)}\n".encode()
    provider = None
    written = False  # the probe may be in the store
    warnings: list[str] = []
    try:
        provider = get_provider(location, fail_fast=True, raw=True)
        try:
            provider.put_bytes(key, payload, "text/plain")
            written = True
            _round_trip(provider, key, payload)
            written = False
        except BaseException as exc:
            # Also after a failed write, which may have stored the object anyway,
            # unless the store refused or never saw that write.
            if written or not isinstance(exc, NO_REQUEST_STORED):
                written = written and not _remove(provider, key)
            raise
        unknown = _unknown_folders(provider, layout)
        warnings += _protection(location, provider)
    except StorageError as exc:
        message = str(exc)
        if written:
            message += f". The probe object '{key}' could not be removed: delete it by hand"
        logger.info("Location %s is unavailable: %s", location.name or "(new)", message)
        return ValidationResult(False, message, exc.reason)
    except Exception as exc:
        # A bug or an SDK surprise: say so without a traceback (which could carry
        # a request with credentials) in the message.
        logger.warning(
            "Validating location %s failed unexpectedly (%s)",
            location.name or "(new)",
            type(exc).__name__,
        )
        return ValidationResult(
            False,
            f"Validation failed unexpectedly ({type(exc).__name__}); see the console's log",
            "error",
        )
    finally:
        if provider is not None:
            with contextlib.suppress(Exception):
                provider.close()

    if unknown:
        warnings.append(_unknown_warning(location, layout, unknown))
    return ValidationResult(
        True,
        f"Available: a probe object was written, read back, listed and deleted in "
        f"{_where(location)}.",
        "ok",
        warnings,
    )


def validate_and_record(location) -> ValidationResult:
    """Validate, then store the outcome on the row (status, message, time) with one
    conditional UPDATE, so that an older validation never overwrites a newer one."""
    from locations.models import BackupLocation

    started = timezone.now()
    result = validate(location)
    status = BackupLocation.Status.AVAILABLE if result.ok else BackupLocation.Status.UNAVAILABLE
    message = " ".join([result.message, *result.warnings]).strip()
    if location.pk is not None:
        updated = (
            BackupLocation.objects.filter(pk=location.pk)
            .filter(Q(last_validated_at__isnull=True) | Q(last_validated_at__lte=started))
            .update(status=status, status_message=message, last_validated_at=timezone.now())
        )
        if not updated:
            logger.info("Location %s was validated again meanwhile; keeping that", location.pk)
            return result
    location.status = status
    location.status_message = message
    location.last_validated_at = timezone.now()
    return result
