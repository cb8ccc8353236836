"""GCS with a service-account key: the signed JWT goes to a token endpoint that checks
its signature (standing in for Google's), the token to fake-gcs-server."""

from __future__ import annotations

import pytest

from locations.validation import validate
from tests.integration.provider_support import location, service_account_json, token_endpoint

pytestmark = pytest.mark.integration


@pytest.fixture
def google(devenv):
    with token_endpoint() as server:
        server.key_json, server.public_key = service_account_json(server.url)
        yield server


def _location(devenv, bucket, google):
    return location("gcs", devenv, bucket, credentials={"service_account_json": google.key_json})


def test_a_service_account_key_validates(devenv, gcs_bucket, gcs_client, google):
    result = validate(_location(devenv, gcs_bucket, google))
    assert result.ok, result.message
    claims = google.assertions[0]
    assert claims["iss"] == "backup@palette-test.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/devstorage.read_write"
    assert list(gcs_client.list_blobs(gcs_bucket)) == []


def test_a_revoked_key_is_named(devenv, gcs_bucket, google):
    google.mode = "revoked"
    result = validate(_location(devenv, gcs_bucket, google))
    assert (result.ok, result.reason) == (False, "bad_credentials")
    assert result.message.startswith("Google rejected the service account key (invalid_grant)")


def test_a_skewed_clock_is_named(devenv, gcs_bucket, google):
    google.mode = "skewed"
    result = validate(_location(devenv, gcs_bucket, google))
    assert (result.ok, result.reason) == (False, "clock_skew")


def test_an_unreachable_token_endpoint_is_named(devenv, gcs_bucket):
    key_json, _ = service_account_json("http://127.0.0.1:1/token")
    loc = location("gcs", devenv, gcs_bucket, credentials={"service_account_json": key_json})
    result = validate(loc)
    assert (result.reason, result.message) == (
        "unreachable",
        "Cannot reach http://127.0.0.1:1/token (connection refused)",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "The service account key is not valid JSON"),
        (
            '{"type": "authorized_user"}',
            'The service account key must be a JSON object with "type": "service_account"',
        ),
        ('{"type": "service_account"}', "The service account JSON is not usable: "),
    ],
)
def test_a_bad_key_file_is_refused_before_any_request(devenv, gcs_bucket, text, message):
    loc = location("gcs", devenv, gcs_bucket, credentials={"service_account_json": text})
    result = validate(loc)
    assert result.reason == "misconfigured"
    assert result.message.startswith(message)
