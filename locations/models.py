"""Backup locations: the object stores (or a local directory) backups go to."""

from __future__ import annotations

import secrets

from django.db import models
from django.urls import reverse
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from palette_site.encryption import EncryptedJSONField
from palette_site.model_fields import user_field
from workspaces.access import LocationQuerySet


def new_external_id() -> str:
    """The STS external ID the console generates for a role's trust policy."""
    return "palette-" + secrets.token_hex(12)


class BackupLocation(models.Model):
    class Provider(models.TextChoices):
        S3 = "s3", "AWS S3"
        MINIO = "minio", "MinIO"
        GCS = "gcs", "Google Cloud Storage"
        AZURE = "azure", "Azure Blob Storage"
        FILESYSTEM = "filesystem", "Local directory"

    class CredentialMode(models.TextChoices):
        STATIC = "static", "Static credentials"
        STS = "sts", "AWS STS AssumeRole (dynamic credentials)"
        NONE = "none", "No credentials (local directory)"

    class LockMode(models.TextChoices):
        NONE = "", "No object lock"
        COMPLIANCE = "compliance", "Compliance (nobody can shorten it)"
        GOVERNANCE = "governance", "Governance (bypass needs a special permission)"

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "Not validated yet"
        AVAILABLE = "available", "Available"
        UNAVAILABLE = "unavailable", "Unavailable"

    name = models.CharField(max_length=100, unique=True)
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="locations",
        help_text="Members of this workspace may use it; empty = only explicit grants.",
    )
    is_default = models.BooleanField(default=False)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    bucket = models.CharField(max_length=255, blank=True, help_text="Bucket or container")
    prefix = models.CharField(max_length=255, blank=True)
    region = models.CharField(max_length=64, blank=True)
    endpoint_url = models.CharField(max_length=300, blank=True)
    force_path_style = models.BooleanField(default=False)
    ca_bundle = models.TextField(blank=True, help_text="PEM certificates to trust (public).")
    path = models.CharField(max_length=500, blank=True, help_text="Directory (local provider)")

    credential_mode = models.CharField(
        max_length=10, choices=CredentialMode.choices, default=CredentialMode.STATIC
    )
    role_arn = models.CharField(max_length=300, blank=True)
    external_id = models.CharField(max_length=100, blank=True, default=new_external_id)
    # One dict per provider: access/secret keys, a service-account JSON, an
    # Azure key or connection string or service principal. Encrypted as one.
    credentials = EncryptedJSONField(blank=True, default=dict)

    # Protection (locations/keys.py, locations/object_lock.py).
    encrypt = models.BooleanField(
        default=False,
        help_text="Seal every object the console writes here (client-side encryption). "
        "Velero cannot read encrypted archives.",
    )
    kms_key_id = models.CharField(
        max_length=300, blank=True, help_text="AWS KMS key that wraps the data keys (S3 only)."
    )
    object_lock_mode = models.CharField(
        max_length=12, choices=LockMode.choices, blank=True, default=LockMode.NONE
    )
    object_lock_days = models.PositiveIntegerField(default=0, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNKNOWN)
    status_message = models.TextField(blank=True)
    last_validated_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = user_field()

    objects = LocationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("use_backuplocation", "Can write backups to the location")]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(is_default=True),
                name="one_default_location_per_workspace",
            ),
            # The STS external ID tells this location's role apart from every other
            # tenant's: never two locations with the same one.
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="unique_location_external_id",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("location_detail", args=[self.pk])

    def clean(self) -> None:
        """Filesystem roots and overlaps (locations/placement.py); the admin, the
        pages and the commands all come through here."""
        from . import protection
        from .placement import check

        super().clean()
        check(self)
        self.object_lock_days = self.object_lock_days or 0  # a form's empty field: no lock
        protection.check(self)

    @property
    def locks(self) -> bool:
        return bool(self.object_lock_mode) and self.object_lock_days > 0

    @property
    def where(self) -> str:
        """A short human description of the target, with no secret in it."""
        if self.provider == self.Provider.FILESYSTEM:
            return self.path
        target = f"{self.bucket}/{self.prefix}".rstrip("/")
        return f"{target} @ {self.endpoint_url}" if self.endpoint_url else target


class LocationUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(BackupLocation, on_delete=models.CASCADE)


class LocationGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(BackupLocation, on_delete=models.CASCADE)


from locations.keys import LocationKey  # noqa: E402, F401 (a model of this app)
from locations.restic_passwords import ResticSecret  # noqa: E402, F401 (a model of this app)
