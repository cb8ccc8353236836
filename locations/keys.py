"""Per-location data keys for client-side encryption (backups/engine/storage/sealed.py).

Each encrypting location has one current data key and any number of retired
ones: new objects are sealed with the current key, and an object names the key
it was sealed with, so backups made before a rotation still open. A data key is
stored only wrapped: by the console's key (PALETTE_ENCRYPTION_KEY, Fernet) or by
an AWS KMS key (S3 locations with ``kms_key_id``). Nothing here logs, shows or
repeats a data key.
"""

from __future__ import annotations

import base64
import os
import secrets

from django.db import models, transaction
from django.utils import timezone

from backups.engine.storage.base import StorageError
from palette_site.encryption import decrypt, encrypt
from workspaces.access import LocationKeyQuerySet


class KeyError_(StorageError):
    """A data key that cannot be made or unwrapped (KMS refused, console key missing)."""

    reason = "key"


def new_key_id() -> str:
    return "k-" + secrets.token_hex(8)


class LocationKey(models.Model):
    class WrappedBy(models.TextChoices):
        CONSOLE = "console", "The console's key (PALETTE_ENCRYPTION_KEY)"
        KMS = "kms", "AWS KMS"

    location = models.ForeignKey(
        "locations.BackupLocation", on_delete=models.CASCADE, related_name="keys"
    )
    key_id = models.CharField(max_length=40, unique=True, default=new_key_id)
    wrapped_by = models.CharField(max_length=10, choices=WrappedBy.choices)
    kms_key_id = models.CharField(max_length=300, blank=True)
    wrapped = models.TextField(help_text="The data key, wrapped (never in clear).")
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    objects = LocationKeyQuerySet.as_manager()

    class Meta:
        app_label = "locations"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.key_id


def _kms(location):
    from locations.providers import get_provider
    from locations.providers.s3 import S3Provider

    provider = get_provider(location, fail_fast=True, raw=True)
    if not isinstance(provider, S3Provider):
        if hasattr(provider, "error"):  # refused by the server's policy
            raise provider.error
        raise KeyError_("A KMS key works with AWS S3 locations only.")
    return provider, provider.service_client("kms", "KMS endpoint")


def _kms_failure(exc: Exception, location) -> KeyError_:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", exc.__class__.__name__)
    return KeyError_(f"AWS KMS refused the data key of location {location.name!r} ({code}).")


def _wrap(location, data_key: bytes) -> tuple[str, str]:
    """(wrapped_by, wrapped) for a fresh data key."""
    if not location.kms_key_id:
        return LocationKey.WrappedBy.CONSOLE, encrypt(base64.b64encode(data_key).decode())
    provider, kms = _kms(location)
    try:
        blob = kms.encrypt(KeyId=location.kms_key_id, Plaintext=data_key)["CiphertextBlob"]
    except StorageError:
        raise
    except Exception as exc:
        raise _kms_failure(exc, location) from None
    finally:
        provider.close()
    return LocationKey.WrappedBy.KMS, base64.b64encode(blob).decode()


def unwrap(key: LocationKey) -> bytes:
    if key.wrapped_by == LocationKey.WrappedBy.CONSOLE:
        try:
            return base64.b64decode(decrypt(key.wrapped))
        except Exception:
            raise KeyError_(
                f"Data key {key.key_id} does not open: PALETTE_ENCRYPTION_KEY does not hold "
                "the key it was wrapped with."
            ) from None
    provider, kms = _kms(key.location)
    try:
        answer = kms.decrypt(CiphertextBlob=base64.b64decode(key.wrapped), KeyId=key.kms_key_id)
    except StorageError:
        raise
    except Exception as exc:
        raise _kms_failure(exc, key.location) from None
    finally:
        provider.close()
    return answer["Plaintext"]


def check_kms(location) -> None:
    """Wrap and unwrap a throwaway key with the location's KMS key (validation)."""
    _, wrapped = _wrap(location, os.urandom(32))
    unwrap(LocationKey(location=location, wrapped_by="kms", kms_key_id=location.kms_key_id,
                       wrapped=wrapped, key_id="check"))  # fmt: skip


def create_key(location) -> LocationKey:
    """A new current data key for ``location``; the previous one is retired."""
    wrapped_by, wrapped = _wrap(location, os.urandom(32))
    with transaction.atomic():
        now = timezone.now()
        location.keys.filter(retired_at__isnull=True).update(retired_at=now)
        return LocationKey.objects.create(
            location=location,
            wrapped_by=wrapped_by,
            kms_key_id=location.kms_key_id,
            wrapped=wrapped,
            created_at=now,
        )


def rotate(location) -> LocationKey:
    return create_key(location)


class Keyring:
    """The keys of one location, unwrapped once each and only when an object needs one."""

    def __init__(self, location):
        self.location = location
        self._open: dict[str, bytes] = {}
        self._current: str | None = None

    def current(self) -> tuple[str, bytes]:
        """The key new objects are sealed with (made on first use); one per keyring,
        so a rotation during a backup never splits it over two keys."""
        if self._current is None:
            key = self.location.keys.filter(retired_at__isnull=True).order_by("-created_at")
            key = key.first() or create_key(self.location)
            self._open[key.key_id] = unwrap(key)
            self._current = key.key_id
        return self._current, self._open[self._current]

    def __call__(self, key_id: str) -> bytes:
        if key_id not in self._open:
            key = self.location.keys.filter(key_id=key_id).first()
            if key is None:
                raise KeyError(key_id)
            self._open[key_id] = unwrap(key)
        return self._open[key_id]


def report(location) -> list[dict]:
    """Each key of ``location`` (newest first) with the backups and snapshots sealed by it."""
    from backups.models import Backup, EtcdSnapshot

    backups: dict[str, list[str]] = {}
    for key_id, name in Backup.objects.filter(location=location).values_list("key_id", "name"):
        backups.setdefault(key_id, []).append(name)
    snapshots: dict[str, int] = {}
    for key_id in EtcdSnapshot.objects.filter(location=location).values_list("key_id", flat=True):
        snapshots[key_id] = snapshots.get(key_id, 0) + 1
    rows = [
        {
            "key": key,
            "current": key.retired_at is None,
            "backups": sorted(backups.pop(key.key_id, [])),
            "snapshots": snapshots.pop(key.key_id, 0),
        }
        for key in location.keys.order_by("-created_at", "-id")
    ]
    rows.append(
        {"key": None, "current": False, "backups": sorted(backups.pop("", [])),
         "snapshots": snapshots.pop("", 0)}
    )  # fmt: skip
    return rows
