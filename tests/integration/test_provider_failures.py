"""Each failure a real peer can produce yields its own reason and sentence.

MinIO checks signatures, permissions and the request time, so the credential,
access-denied and clock-skew cases run against it, through the minio client and
through boto3. TLS runs against a local HTTPS server with a certificate from a
CA made here. moto does not check signatures: it is used for STS.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from urllib.parse import urlsplit

import pytest

from locations.providers.errors import CLOCK_SKEW_MESSAGE
from locations.validation import validate
from tests.integration.provider_support import (
    location,
    make_ca,
    make_server_cert,
    pem,
    tls_server,
)

pytestmark = pytest.mark.integration

ON_MINIO = ["minio", "s3-on-minio"]


@pytest.mark.parametrize("kind", ON_MINIO)
def test_a_wrong_secret_key_is_named(kind, devenv, minio_bucket):
    loc = location(kind, devenv, minio_bucket)
    loc.credentials = {**loc.credentials, "secret_key": "not-the-secret-" + uuid.uuid4().hex}
    result = validate(loc)
    assert (result.ok, result.reason) == (False, "bad_credentials")
    assert result.message == "The secret key does not match the access key (SignatureDoesNotMatch)"


@pytest.mark.parametrize("kind", ON_MINIO)
def test_an_unknown_access_key_is_named(kind, devenv, minio_bucket):
    loc = location(kind, devenv, minio_bucket)
    loc.credentials = {**loc.credentials, "access_key": "NOSUCHKEY" + uuid.uuid4().hex[:8]}
    result = validate(loc)
    assert (result.ok, result.reason) == (False, "bad_credentials")
    assert result.message == "The access key is not valid for this endpoint (InvalidAccessKeyId)"


# Access denied: a MinIO user whose policy lacks one permission -------------------------


@pytest.fixture
def restricted_user(devenv):
    """restricted_user(actions) -> credentials of a new MinIO user allowed only ``actions``."""
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    admin = MinioAdmin(
        endpoint=urlsplit(devenv["MINIO_ENDPOINT"]).netloc,
        credentials=StaticProvider(devenv["MINIO_ACCESS_KEY"], devenv["MINIO_SECRET_KEY"]),
        secure=False,
    )
    made = []

    def make(actions: list[str]) -> dict:
        name = "palette-" + uuid.uuid4().hex[:10]
        secret = "secret-" + uuid.uuid4().hex
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": ["arn:aws:s3:::*"]}],
        }
        admin.user_add(name, secret)
        admin.policy_add(name, policy=policy)
        admin.policy_set(name, user=name)
        made.append(name)
        return {"access_key": name, "secret_key": secret}

    yield make
    for name in made:
        admin.user_remove(name)
        admin.policy_remove(name)


@pytest.mark.parametrize("kind", ON_MINIO)
@pytest.mark.parametrize(
    ("allowed", "lacking"),
    [
        (["s3:GetObject", "s3:ListBucket"], "s3:PutObject"),
        (["s3:PutObject", "s3:DeleteObject", "s3:ListBucket"], "s3:GetObject"),
        (["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], "s3:ListBucket"),
    ],
)
def test_access_denied_names_the_missing_permission(
    kind, allowed, lacking, devenv, minio_bucket, minio_s3, restricted_user
):
    loc = location(kind, devenv, minio_bucket, prefix="velero")
    loc.credentials = restricted_user(allowed)
    result = validate(loc)
    assert (result.ok, result.reason) == (False, "access_denied")
    assert result.message == (
        f"Access denied to bucket '{minio_bucket}': the credentials lack {lacking}"
    )
    assert minio_s3.list_objects_v2(Bucket=minio_bucket).get("Contents", []) == []


@pytest.mark.parametrize("kind", ON_MINIO)
def test_a_probe_that_cannot_be_deleted_is_reported(
    kind, devenv, minio_bucket, minio_s3, restricted_user
):
    loc = location(kind, devenv, minio_bucket, prefix="velero")
    loc.credentials = restricted_user(["s3:PutObject", "s3:GetObject", "s3:ListBucket"])
    result = validate(loc)
    assert (result.ok, result.reason) == (False, "access_denied")
    left = [o["Key"] for o in minio_s3.list_objects_v2(Bucket=minio_bucket)["Contents"]]
    assert len(left) == 1 and left[0].startswith("velero/metadata/palette-validation-")
    assert result.message == (
        f"Access denied to bucket '{minio_bucket}': the credentials lack s3:DeleteObject. "
        f"The probe object '{left[0]}' could not be removed: delete it by hand"
    )


# Clock skew: the signer's clock runs 20 minutes late; MinIO's check is real ------------


@pytest.mark.parametrize("kind", ON_MINIO)
def test_clock_skew_is_named(kind, devenv, minio_bucket, monkeypatch):
    import botocore.auth
    import minio.time

    late = dt.timedelta(minutes=20)
    real_botocore, real_minio = botocore.auth.get_current_datetime, minio.time.utcnow
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: real_botocore(*a, **k) - late
    )
    monkeypatch.setattr(minio.time, "utcnow", lambda: real_minio() - late)
    result = validate(location(kind, devenv, minio_bucket))
    assert (result.ok, result.reason) == (False, "clock_skew")
    assert result.message == CLOCK_SKEW_MESSAGE


# TLS with a custom CA ------------------------------------------------------------------

TLS_KINDS = ["minio", "s3-on-minio", "gcs", "azure-key"]


@pytest.fixture(scope="module")
def https_url():
    """A local HTTPS server whose certificate our CA signed: (url, our CA PEM, other CA PEM)."""
    ca_key, ca_cert = make_ca("palette test CA")
    _, other_ca = make_ca("some other CA")
    with tls_server(*make_server_cert(ca_key, ca_cert)) as url:
        yield url, pem(ca_cert), pem(other_ca)


def _tls_location(kind, devenv, url, ca_bundle):
    endpoint = url + "/devstoreaccount1" if kind.startswith("azure") else url
    return location(kind, devenv, "palette-tls", endpoint_url=endpoint, ca_bundle=ca_bundle)


@pytest.mark.parametrize("kind", TLS_KINDS)
def test_a_certificate_from_another_ca_fails_tls(kind, devenv, https_url):
    url, _, other_ca = https_url
    result = validate(_tls_location(kind, devenv, url, other_ca))
    assert (result.ok, result.reason) == (False, "tls")
    assert result.message == (
        f"TLS verification of {url}{'/devstoreaccount1' if kind.startswith('azure') else ''} "
        "failed: the certificate is not signed by the custom CA bundle"
    )


@pytest.mark.parametrize("kind", TLS_KINDS)
def test_without_a_bundle_the_system_cas_are_named(kind, devenv, https_url):
    url, _, _ = https_url
    result = validate(_tls_location(kind, devenv, url, ""))
    assert result.reason == "tls"
    assert result.message.endswith("the certificate is not signed by the system CAs")


@pytest.mark.parametrize("kind", TLS_KINDS)
def test_the_right_ca_gets_past_tls(kind, devenv, https_url):
    """The server answers "no such bucket" to everything: getting that answer means the
    handshake, with the custom CA, succeeded."""
    url, our_ca, _ = https_url
    result = validate(_tls_location(kind, devenv, url, our_ca))
    assert result.reason == "bucket_missing", result.message


@pytest.mark.parametrize("kind", ON_MINIO)
def test_https_to_a_plain_http_port_is_explained(kind, devenv, minio_bucket):
    url = devenv["MINIO_ENDPOINT"].replace("http://", "https://")
    result = validate(location(kind, devenv, minio_bucket, endpoint_url=url))
    assert result.reason == "tls"
    assert result.message == (
        f"TLS verification of {url} failed: the server does not speak TLS on this port "
        "(use http://)"
    )


def test_an_invalid_ca_bundle_is_refused_before_any_request(devenv, minio_bucket):
    loc = location("minio", devenv, minio_bucket, ca_bundle="not a certificate")
    result = validate(loc)
    assert result.reason == "misconfigured"
    assert result.message.startswith("The custom CA bundle is not valid")


# Azure: Azurite checks the shared-key signature -----------------------------------------


def test_a_wrong_azure_account_key_is_named(devenv, azure_container):
    import base64

    loc = location("azure-key", devenv, azure_container)
    loc.credentials = {**loc.credentials, "account_key": base64.b64encode(b"x" * 64).decode()}
    result = validate(loc)
    assert (result.ok, result.reason) == (False, "bad_credentials")
    assert "(AuthenticationFailed)" in result.message


# STS ----------------------------------------------------------------------------------


def test_sts_assumes_the_role_with_the_external_id_and_refreshes(devenv, s3_bucket):
    from locations.providers import get_provider

    loc = location("s3-sts", devenv, s3_bucket, external_id="palette-" + uuid.uuid4().hex[:12])
    provider = get_provider(loc)
    calls = []
    provider.sts.meta.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: calls.append(dict(params))
    )
    provider.put_bytes("a/b", b"x")
    assert calls == [
        {
            "RoleArn": devenv["STS_ROLE_ARN"],
            "RoleSessionName": "palette-backup-console",
            "DurationSeconds": 3600,
            "ExternalId": loc.external_id,
        }
    ]
    credentials = provider.client._request_signer._credentials
    frozen = credentials.get_frozen_credentials()
    assert frozen.token and frozen.access_key != devenv["S3_ACCESS_KEY"]

    # Ten minutes before expiry botocore must refresh: the next call assumes the role again.
    credentials._expiry_time = credentials._time_fetcher() + dt.timedelta(minutes=5)
    assert provider.get_bytes("a/b") == b"x"
    assert len(calls) == 2
    provider.delete("a/b")
    provider.close()


def test_sts_is_validated_end_to_end(devenv, s3_bucket, moto_s3):
    result = validate(location("s3-sts", devenv, s3_bucket))
    assert result.ok, result.message
    assert moto_s3.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []


def test_the_sts_role_arn_is_required(devenv, s3_bucket):
    result = validate(location("s3-sts", devenv, s3_bucket, role_arn=""))
    assert result.reason == "misconfigured"
    assert result.message == "STS needs the ARN of the role to assume"


# Filesystem ----------------------------------------------------------------------------


def test_a_file_is_not_a_directory(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    result = validate(location("filesystem", {}, str(path)))
    assert (result.reason, result.message) == ("misconfigured", f"'{path}' is not a directory")


def test_a_directory_this_process_cannot_write_is_named(tmp_path):
    """As root (as CI runs) permissions do not apply: a forked child runs as nobody."""
    import os
    import tempfile

    directory = tempfile.mkdtemp(prefix="palette-ro-", dir="/tmp")
    os.chmod(directory, 0o555)  # noqa: S103 (nobody may read it, not write it)
    loc = location("filesystem", {}, directory)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, validate, report, exit without cleanup
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            result = validate(loc)
            os.write(write_end, json.dumps([result.reason, result.message]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    os.rmdir(directory)
    reason, message = json.loads(answer)
    assert reason == "access_denied"
    assert message.startswith(f"Directory '{directory}' is not writable by this process")
