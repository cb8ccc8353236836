"""No secret reaches a validation message, a warning or a log record (DEBUG included),
whatever fails: bad keys, denied access, unreachable endpoints, TLS, bad tokens."""

from __future__ import annotations

import base64
import logging
import uuid

import pytest

from locations.providers import StorageError, get_provider
from locations.validation import validate
from tests.integration.provider_support import (
    location,
    make_ca,
    pem,
    secrets_of,
    service_account_json,
    token_endpoint,
)

pytestmark = pytest.mark.integration


def _wrong() -> str:
    return "wrong-secret-" + uuid.uuid4().hex


def _private_key(key_json: str) -> str:
    import json

    body = json.loads(key_json)["private_key"].splitlines()[1:-1]
    return "".join(body)[:64]  # any part of the key body


def _scenarios(devenv, minio_bucket, azure_container, gcs_bucket, s3_bucket):
    """(name, location, the secrets it holds) for failing and working settings."""
    wrong = _wrong()

    def minio():
        return location("minio", devenv, minio_bucket)

    def on_minio():
        return location("s3-on-minio", devenv, minio_bucket)

    azure_key = base64.b64encode(uuid.uuid4().bytes * 4).decode()
    conn = devenv["AZURE_CONNECTION_STRING"].replace(devenv["AZURE_ACCOUNT_KEY"], azure_key)
    yield "minio, wrong secret", _with(minio(), secret_key=wrong), [wrong]
    yield "s3 on minio, wrong secret", _with(on_minio(), secret_key=wrong), [wrong]
    yield "minio, works", minio(), []
    yield "minio, unreachable", _at(minio(), "http://127.0.0.1:1"), []
    yield "s3, unreachable", _at(on_minio(), "http://127.0.0.1:1"), []
    yield "minio, TLS", _at(minio(), "https://127.0.0.1:1"), []
    other_ca = pem(make_ca("other")[1])
    tls = location("minio", devenv, minio_bucket, ca_bundle=other_ca)
    yield "minio, https to http", _at(tls, devenv["MINIO_ENDPOINT"].replace("http:", "https:")), []
    moto_secret = _wrong()  # moto takes any secret
    sts = _with(location("s3-sts", devenv, s3_bucket), secret_key=moto_secret)
    yield "s3 sts, works", sts, [moto_secret]
    sts_unreachable = location("s3-sts", devenv, s3_bucket, endpoint_url="http://127.0.0.1:1")
    yield "s3 sts, unreachable", sts_unreachable, []
    azure = location("azure-key", devenv, azure_container)
    yield "azure, wrong key", _with(azure, account_key=azure_key), [azure_key]
    azure = location("azure-key", devenv, azure_container)
    yield (
        "azure, wrong connection string",
        location(
            "azure-connection-string",
            devenv,
            azure_container,
            credentials={"connection_string": conn},
        ),
        [azure_key],
    )
    yield "azure, unreachable", _at(azure, "http://127.0.0.1:1/devstoreaccount1"), []
    with token_endpoint() as google:
        key_json, google.public_key = service_account_json(google.url)
        gcs = location("gcs", devenv, gcs_bucket, credentials={"service_account_json": key_json})
        yield "gcs, works", gcs, [_private_key(key_json)]
        google.mode = "revoked"
        yield "gcs, revoked key", gcs, [_private_key(key_json)]


def _with(loc, **credentials):
    loc.credentials = {**loc.credentials, **credentials}
    return loc


def _at(loc, url):
    loc.endpoint_url = url
    return loc


def test_no_secret_in_messages_or_logs(
    devenv, minio_bucket, azure_container, gcs_bucket, s3_bucket, caplog
):
    caplog.set_level(logging.DEBUG)
    known = secrets_of(devenv)
    outcomes = {}
    for name, loc, secrets in _scenarios(
        devenv, minio_bucket, azure_container, gcs_bucket, s3_bucket
    ):
        caplog.clear()
        result = validate(loc)
        outcomes[name] = result.reason
        text = "\n".join([result.message, *result.warnings, repr(result), caplog.text])
        text += "\n".join(str(r.args) for r in caplog.records)
        for secret in [*known, *secrets]:
            assert secret not in text, f"{name}: a secret appears in the message or the logs"
    assert outcomes == {
        "minio, wrong secret": "bad_credentials",
        "s3 on minio, wrong secret": "bad_credentials",
        "minio, works": "ok",
        "minio, unreachable": "unreachable",
        "s3, unreachable": "unreachable",
        "minio, TLS": "unreachable",
        "minio, https to http": "tls",
        "s3 sts, works": "ok",
        "s3 sts, unreachable": "unreachable",
        "azure, wrong key": "bad_credentials",
        "azure, wrong connection string": "bad_credentials",
        "azure, unreachable": "unreachable",
        "gcs, works": "ok",
        "gcs, revoked key": "bad_credentials",
    }


def test_provider_errors_hold_no_secret(devenv, minio_bucket):
    wrong = _wrong()
    for kind in ("minio", "s3-on-minio"):
        provider = get_provider(_with(location(kind, devenv, minio_bucket), secret_key=wrong))
        with pytest.raises(StorageError) as failure:
            provider.put_bytes("a", b"x")
        error = failure.value
        assert wrong not in str(error) and wrong not in repr(error)
        assert error.__cause__ is None and error.__suppress_context__
        provider.close()
