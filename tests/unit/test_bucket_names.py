"""Bucket and container names are checked before any request is made."""

from __future__ import annotations

import pytest

from locations.models import BackupLocation
from locations.providers import InvalidBucketName
from locations.validation import (
    check_azure_container,
    check_gcs_bucket,
    check_s3_bucket,
    validate,
)

GOOD_S3 = ["abc", "my-bucket", "my.bucket.v2", "a" * 63, "0-backups", "velero"]
BAD_S3 = {
    "ab": "must be 3 to 63 characters long (it has 2)",
    "a" * 64: "must be 3 to 63 characters long (it has 64)",
    "My-Bucket": "may contain only lowercase letters",
    "my_bucket": "may contain only lowercase letters",
    "-bucket": "must begin and end with a letter or digit",
    "bucket-": "must begin and end with a letter or digit",
    "my..bucket": "two adjacent dots",
    "my.-bucket": "a dot next to a hyphen",
    "192.168.5.4": "must not be an IP address",
    "xn--bucket": "must not begin with 'xn--'",
    "sthree-bucket": "must not begin with 'sthree-'",
    "bucket-s3alias": "must not end with '-s3alias'",
    "bucket--ol-s3": "must not end with '--ol-s3'",
    "my bucket": "may contain only lowercase letters",
}


@pytest.mark.parametrize("name", GOOD_S3)
def test_good_s3_names_pass(name):
    check_s3_bucket(name)


@pytest.mark.parametrize(("name", "why"), BAD_S3.items())
def test_bad_s3_names_say_why(name, why):
    with pytest.raises(InvalidBucketName, match=why.replace("(", r"\(").replace(")", r"\)")):
        check_s3_bucket(name)


@pytest.mark.parametrize("name", ["my_bucket", "a.b.c", "abc", "x" * 63 + "." + "y" * 63])
def test_good_gcs_names_pass(name):
    check_gcs_bucket(name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("ab", "3 to 63"),
        ("x" * 64, "3 to 63"),
        ("x" * 64 + ".abc", "at most 63"),
        ("Bucket", "lowercase"),
        ("_bucket", "begin and end"),
        ("goog-backups", "must not begin with 'goog'"),
        ("my-google-backups", "nor contain 'google'"),
        ("10.0.0.1", "IP address"),
        ("a..b", "adjacent dots"),
    ],
)
def test_bad_gcs_names_say_why(name, why):
    with pytest.raises(InvalidBucketName, match=why):
        check_gcs_bucket(name)


@pytest.mark.parametrize("name", ["abc", "my-container", "a1-b2-c3", "x" * 63])
def test_good_azure_names_pass(name):
    check_azure_container(name)


@pytest.mark.parametrize(
    "name", ["ab", "x" * 64, "My-Container", "-abc", "abc-", "a--b", "my.container", "my_c"]
)
def test_bad_azure_names_are_refused(name):
    with pytest.raises(InvalidBucketName):
        check_azure_container(name)


@pytest.mark.parametrize(
    ("fields", "reason", "message"),
    [
        (
            {"provider": "s3", "bucket": "Bad_Name"},
            "invalid_bucket_name",
            "Bucket name 'Bad_Name' may contain only lowercase letters",
        ),
        ({"provider": "azure", "bucket": ""}, "invalid_bucket_name", "Set the container name"),
        ({"provider": "gcs", "bucket": ""}, "invalid_bucket_name", "Set the bucket name"),
        (
            {"provider": "minio", "bucket": "backups"},
            "misconfigured",
            "MinIO needs its endpoint URL",
        ),
        (
            {"provider": "s3", "bucket": "backups", "endpoint_url": "minio:9000"},
            "misconfigured",
            "The endpoint URL 'minio:9000' must begin with http:// or https://",
        ),
        (
            {"provider": "s3", "bucket": "backups", "endpoint_url": "http://h:99999"},
            "misconfigured",
            "The endpoint URL 'http://h:99999' has an invalid port",
        ),
        ({"provider": "filesystem", "path": ""}, "misconfigured", "Set the directory"),
        (
            {"provider": "filesystem", "path": "relative/dir"},
            "misconfigured",
            "The directory must be an absolute path",
        ),
        ({"provider": "ftp"}, "misconfigured", "Unknown storage provider 'ftp'"),
    ],
)
def test_settings_are_refused_before_any_request(fields, reason, message):
    # An unreachable endpoint would make a request fail differently: none is made.
    result = validate(BackupLocation(name="x", **fields))
    assert (result.ok, result.reason) == (False, reason)
    assert result.message.startswith(message)
