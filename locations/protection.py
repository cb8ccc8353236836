"""The rules for a location's protection settings (encryption, KMS, object lock), in one
place: the model's ``clean()`` applies them, so the form, the admin and the commands
all refuse the same settings with the same words."""

from __future__ import annotations

from django.core.exceptions import ValidationError

LOCKING_PROVIDERS = ("s3", "minio")
MAX_LOCK_DAYS = 36500

# Why a provider cannot lock objects, as the form shows it.
NO_LOCK_REASON = {
    "gcs": "Object lock is not offered for Google Cloud Storage: the console's GCS emulator "
    "has no bucket retention policies to test it against.",
    "azure": "Object lock is not offered for Azure: Azurite does not implement immutability "
    "policies, so the console cannot prove it works.",
    "filesystem": "A local directory cannot lock objects.",
}

VELERO_WARNING = (
    "Velero cannot read encrypted archives: backups in an encrypting location restore "
    "through the console only."
)


def form_fields(provider: str) -> list[str]:
    """The protection fields the location form shows for ``provider``."""
    if provider == "s3":
        return ["encrypt", "kms_key_id", "object_lock_mode", "object_lock_days"]
    if provider == "minio":
        return ["encrypt", "object_lock_mode", "object_lock_days"]
    return ["encrypt", "object_lock_mode"] if provider in NO_LOCK_REASON else []


def adjust_form(form) -> None:
    """Help texts and disabled fields that follow the provider and the saved row."""
    fields = form.fields
    if "encrypt" in fields:
        fields["encrypt"].help_text = VELERO_WARNING
        if form.instance.pk:
            fields["encrypt"].disabled = True
            fields["encrypt"].help_text += " It is chosen when the location is created."
    if form.provider not in LOCKING_PROVIDERS and "object_lock_mode" in fields:
        fields["object_lock_mode"].disabled = True
        fields["object_lock_mode"].help_text = NO_LOCK_REASON[form.provider]
    if "object_lock_days" in fields:
        fields["object_lock_days"].help_text = (
            "Every object of a backup is written once, locked this many days: nobody can "
            "delete it earlier (the bucket must have object lock enabled)."
        )


def problems(location) -> dict[str, str]:
    """Field name -> what is wrong with the protection settings of ``location``."""
    found: dict[str, str] = {}
    if location.pk is not None:
        saved = type(location).objects.filter(pk=location.pk).values_list("encrypt", flat=True)
        if saved and saved[0] != location.encrypt:
            found["encrypt"] = (
                "Encryption is chosen when a location is created: turning it on or off would "
                "leave its backups unreadable. Create another location instead."
            )
    if location.kms_key_id and location.provider != "s3":
        found["kms_key_id"] = "A KMS key works with AWS S3 locations only."
    elif location.kms_key_id and not location.encrypt:
        found["kms_key_id"] = "A KMS key wraps encryption keys: turn encryption on too."
    mode, days = location.object_lock_mode, location.object_lock_days or 0
    if mode and location.provider not in LOCKING_PROVIDERS:
        found["object_lock_mode"] = NO_LOCK_REASON.get(
            location.provider, "This provider cannot lock objects."
        )
    elif mode and not 1 <= days <= MAX_LOCK_DAYS:
        found["object_lock_days"] = f"Give a retention of 1 to {MAX_LOCK_DAYS} days."
    elif days and not mode:
        found["object_lock_mode"] = "Choose compliance or governance for the retention."
    return found


def check(location) -> None:
    if found := problems(location):
        raise ValidationError(found)
