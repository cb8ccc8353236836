"""manage.py add_location NAME --provider P ... : validate, then save; exit 1 if it does not work."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from locations.forms import endpoint_problem
from locations.lifecycle import save_location
from locations.models import BackupLocation
from locations.validation import validate
from palette_site.command_support import read_text
from workspaces.models import Workspace

P = BackupLocation.Provider


class Command(BaseCommand):
    help = (
        "Add a backup location. It is validated first (a probe object is written, read, "
        "listed and deleted); it is saved only when that works. Prints 'Available' or the reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--provider", required=True, choices=P.values)
        parser.add_argument("--bucket", default="", help="Bucket (Azure: container)")
        parser.add_argument("--prefix", default="")
        parser.add_argument("--region", default="")
        parser.add_argument("--endpoint", default="", help="e.g. http://127.0.0.1:9000 (MinIO)")
        parser.add_argument("--path-style", action="store_true", help="Required for MinIO")
        parser.add_argument("--ca-file", help="PEM file of CA certificates to trust")
        parser.add_argument("--access-key", default="")
        parser.add_argument("--secret-key", default="")
        parser.add_argument("--role-arn", default="", help="AWS STS: the role to assume")
        parser.add_argument(
            "--external-id",
            default="",
            help="Ignored (kept for old scripts): the console generates the external ID",
        )
        parser.add_argument("--credentials-file", help="GCS: a service-account JSON key file")
        parser.add_argument("--account-name", default="")
        parser.add_argument("--account-key", default="")
        parser.add_argument("--connection-string", default="")
        parser.add_argument("--path", default="", help="Directory (filesystem provider)")
        parser.add_argument("--workspace", help="Workspace (name or slug) whose members may use it")
        parser.add_argument(
            "--encrypt",
            action="store_true",
            help="Seal every object the console writes (Velero cannot read encrypted archives)",
        )
        parser.add_argument(
            "--kms-key-id", default="", help="S3: the AWS KMS key to wrap data keys"
        )
        parser.add_argument("--object-lock-days", type=int, default=0)
        parser.add_argument(
            "--object-lock-mode", default="", choices=["", *BackupLocation.LockMode.values[1:]]
        )

    def handle(self, *args, **o):
        if problem := endpoint_problem(o["endpoint"]):
            raise CommandError(f"--endpoint: {problem}")
        if BackupLocation.objects.filter(name=o["name"]).exists():
            raise CommandError(f"A location named {o['name']!r} exists already.")
        location = BackupLocation(
            name=o["name"],
            provider=o["provider"],
            bucket=o["bucket"],
            prefix=o["prefix"].strip("/"),
            region=o["region"],
            endpoint_url=o["endpoint"],
            force_path_style=o["path_style"],
            ca_bundle=read_text(o["ca_file"], "CA"),
            path=o["path"],
            credentials=self._credentials(o),
            encrypt=o["encrypt"],
            kms_key_id=o["kms_key_id"],
            object_lock_mode=o["object_lock_mode"],
            object_lock_days=max(o["object_lock_days"], 0),
        )
        if o["object_lock_days"] and not o["object_lock_mode"]:
            location.object_lock_mode = BackupLocation.LockMode.COMPLIANCE
        if o["workspace"]:
            workspace = Workspace.objects.filter(
                Q(slug=o["workspace"]) | Q(name=o["workspace"])
            ).first()
            if workspace is None:
                raise CommandError(f"There is no workspace {o['workspace']!r}.")
            location.workspace = workspace
            location.is_default = not workspace.locations.filter(is_default=True).exists()
        self._mode(location, o)
        self._check(location)
        try:
            location.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        result = validate(location)
        sts = location.credential_mode == BackupLocation.CredentialMode.STS
        if not result.ok and not sts:
            raise CommandError(f"Unavailable: {result.message}")
        if not result.ok:
            # The role's trust policy needs the generated external ID before the
            # location can work: keep the location (Unavailable) so the ID stays.
            save_location(location, result)
            raise CommandError(
                f"Unavailable: {result.message}\nSaved as Unavailable: the role's trust policy "
                f"must require the external ID {location.external_id}; then run "
                f"manage.py validate_location {location.name}"
            )
        save_location(location, result)
        self.stdout.write("Available")
        for warning in result.warnings:
            self.stdout.write(f"Warning: {warning}")

    def _credentials(self, o) -> dict:
        keys = ("access_key", "secret_key", "account_name", "account_key", "connection_string")
        values = {key: o[key] for key in keys}
        values["service_account_json"] = read_text(o["credentials_file"], "credentials")
        return {key: value for key, value in values.items() if value}

    def _mode(self, location: BackupLocation, o) -> None:
        if location.provider == P.FILESYSTEM:
            location.credential_mode = BackupLocation.CredentialMode.NONE
        elif o["role_arn"]:
            if location.provider != P.S3:
                raise CommandError("--role-arn (STS) works with --provider s3 only.")
            location.credential_mode = BackupLocation.CredentialMode.STS
            location.role_arn = o["role_arn"]
            if o["external_id"]:
                self.stderr.write(
                    "Warning: --external-id is ignored: the console generates the external ID "
                    f"({location.external_id}); put that one in the role's trust policy."
                )
        else:
            location.credential_mode = BackupLocation.CredentialMode.STATIC

    def _check(self, location: BackupLocation) -> None:
        """Refuse obviously incomplete settings before any network call."""
        creds = location.credentials
        if location.provider == P.FILESYSTEM:
            if not location.path.startswith("/"):
                raise CommandError(
                    "--path must be an absolute directory for the filesystem provider."
                )
            return
        if not location.bucket:
            raise CommandError("--bucket is required for this provider.")
        static = location.credential_mode == BackupLocation.CredentialMode.STATIC
        if location.provider in (P.S3, P.MINIO) and static:
            if not (creds.get("access_key") and creds.get("secret_key")):
                raise CommandError("Give --access-key and --secret-key (or --role-arn for STS).")
        if location.provider == P.AZURE and not (
            creds.get("connection_string")
            or (creds.get("account_name") and creds.get("account_key"))
        ):
            raise CommandError("Give --connection-string, or --account-name and --account-key.")
