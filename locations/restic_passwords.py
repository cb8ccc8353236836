"""The restic passwords of a location's deduplicated volume copies.

Each location has one random 32-byte secret, made on first use and kept only wrapped,
as a data key is (``locations/keys.py``: by the console's key, or by the location's
AWS KMS key); the password of one namespace's repository is HKDF-SHA256 of it, info
``palette restic <location id> <namespace>``. The same for plain and encrypting
locations, so a rotation of the data keys, or encryption turned on or off, never locks
the console out of copies made before (a password derived from the current data key
would change at each rotation). Nothing here logs, shows or repeats the secret.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from workspaces.access import LocationKeyQuerySet


class ResticSecret(models.Model):
    location = models.OneToOneField(
        "locations.BackupLocation", on_delete=models.CASCADE, related_name="restic_secret"
    )
    wrapped_by = models.CharField(max_length=10)  # as LocationKey.wrapped_by
    kms_key_id = models.CharField(max_length=300, blank=True)
    wrapped = models.TextField(help_text="The secret, wrapped (never in clear).")
    created_at = models.DateTimeField(default=timezone.now)

    # Seen (never in clear) under the rule of the location's keys.
    objects = LocationKeyQuerySet.as_manager()

    class Meta:
        app_label = "locations"

    def __str__(self) -> str:
        return f"restic secret of location {self.location_id}"


def _secret(location) -> bytes:
    from locations.keys import LocationKey, _wrap, unwrap

    row = ResticSecret.objects.filter(location=location).first()
    if row is None:
        wrapped_by, wrapped = _wrap(location, os.urandom(32))
        try:
            with transaction.atomic():
                row = ResticSecret.objects.create(
                    location=location, wrapped_by=wrapped_by,
                    kms_key_id=location.kms_key_id, wrapped=wrapped,
                )  # fmt: skip
        except IntegrityError:  # made by another job at the same moment
            row = ResticSecret.objects.get(location=location)
    as_key = LocationKey(location=location, wrapped_by=row.wrapped_by,
                         kms_key_id=row.kms_key_id, wrapped=row.wrapped, key_id="restic")  # fmt: skip
    return unwrap(as_key)


def password(secret: bytes, location_id: int, namespace: str) -> str:
    info = f"palette restic {location_id} {namespace}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret).hex()


def passwords(location) -> Callable[[str], str]:
    """namespace -> its repository's password; the secret is unwrapped on first use."""
    opened: list[bytes] = []

    def of(namespace: str) -> str:
        if not opened:
            opened.append(_secret(location))
        return password(opened[0], location.pk, namespace)

    return of
