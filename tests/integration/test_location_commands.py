"""add_location and validate_location against the real stores."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from locations.models import BackupLocation
from tests import factories

pytestmark = pytest.mark.integration


def test_add_location_minio_prints_available(db, devenv, minio_bucket, capsys):
    factories.workspace("Team")
    call_command(
        "add_location", "minio-1", "--provider", "minio", "--bucket", minio_bucket,
        "--prefix", "velero", "--endpoint", devenv["MINIO_ENDPOINT"], "--path-style",
        "--access-key", devenv["MINIO_ACCESS_KEY"], "--secret-key", devenv["MINIO_SECRET_KEY"],
        "--workspace", "team",
    )  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == "Available"
    location = BackupLocation.objects.get(name="minio-1")
    assert location.status == BackupLocation.Status.AVAILABLE
    assert location.is_default and location.workspace.slug == "team"


def test_add_location_refuses_a_bad_secret_and_saves_nothing(db, devenv, minio_bucket):
    with pytest.raises(CommandError, match="Unavailable") as failure:
        call_command(
            "add_location", "minio-bad", "--provider", "minio", "--bucket", minio_bucket,
            "--endpoint", devenv["MINIO_ENDPOINT"], "--path-style",
            "--access-key", devenv["MINIO_ACCESS_KEY"], "--secret-key", "wrong-secret-123",
        )  # fmt: skip
    assert "wrong-secret-123" not in str(failure.value)
    assert not BackupLocation.objects.filter(name="minio-bad").exists()


def test_add_location_s3_with_sts_against_moto(db, devenv, s3_bucket, capsys):
    call_command(
        "add_location", "aws-sts", "--provider", "s3", "--bucket", s3_bucket,
        "--region", devenv.get("S3_REGION", "us-east-1"), "--endpoint", devenv["S3_ENDPOINT"],
        "--path-style", "--access-key", devenv["S3_ACCESS_KEY"],
        "--secret-key", devenv["S3_SECRET_KEY"], "--role-arn", devenv["STS_ROLE_ARN"],
        "--external-id", "palette-0123456789abcdef01234567",
    )  # fmt: skip
    out = capsys.readouterr()
    assert "Available" in out.out
    location = BackupLocation.objects.get(name="aws-sts")
    assert location.credential_mode == BackupLocation.CredentialMode.STS
    # The flag is still accepted, but the console generates the ID (and says so).
    assert location.external_id != "palette-0123456789abcdef01234567"
    assert (
        f"--external-id is ignored: the console generates the external ID ({location.external_id})"
        in out.err
    )


def test_add_location_filesystem_and_revalidate(db, tmp_path, capsys):
    call_command("add_location", "disk", "--provider", "filesystem", "--path", str(tmp_path))
    call_command("validate_location", "disk")
    assert capsys.readouterr().out.count("Available") == 2
    tmp_path.chmod(0o500)  # root ignores permissions: remove the directory instead
    tmp_path.chmod(0o700)
    for child in tmp_path.iterdir():
        child.rmdir() if child.is_dir() else child.unlink()
    tmp_path.rmdir()
    with pytest.raises(CommandError, match="Unavailable"):
        call_command("validate_location", "disk")
    assert BackupLocation.objects.get(name="disk").status == BackupLocation.Status.UNAVAILABLE


def test_commands_explain_their_usage_errors(db, tmp_path):
    with pytest.raises(CommandError, match="--bucket is required"):
        call_command(
            "add_location", "x", "--provider", "minio", "--access-key", "a", "--secret-key", "b"
        )
    with pytest.raises(CommandError, match="absolute"):
        call_command("add_location", "x", "--provider", "filesystem", "--path", "relative/dir")
    with pytest.raises(CommandError, match="no location named"):
        call_command("validate_location", "nope")
    with pytest.raises(CommandError, match="no workspace"):
        call_command(
            "add_location",
            "x",
            "--provider",
            "filesystem",
            "--path",
            str(tmp_path),
            "--workspace",
            "ghost",
        )
