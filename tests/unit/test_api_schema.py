"""The OpenAPI schema at /api/schema/ is valid OpenAPI 3, is generated without a
warning, and lists exactly the API's routes and methods; /api/docs/ serves the
Swagger UI from the console's own static files (no CDN)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from tests.unit.test_api_personas import api_routes

pytestmark = pytest.mark.django_db
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_it_serves_a_valid_openapi_3_schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    served = yaml.safe_load(response.content)
    assert served["openapi"].startswith("3.")
    validate_schema(served)  # raises on an invalid document


def test_it_is_generated_without_warnings(capsys):
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache, GENERATOR_STATS._error_cache


def test_its_paths_are_exactly_the_routes(schema):
    documented = set()
    for path, operations in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        name = resolve(concrete).url_name
        documented |= {(name, method) for method in operations if method in METHODS}
    assert documented == api_routes()


def test_every_operation_requires_the_bearer_token_or_a_session(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            schemes = {name for entry in operation["security"] for name in entry}
            assert schemes == {"bearerToken", "cookieAuth"}, (method, path)


def test_the_job_phase_uses_velero_names(schema):
    phase = schema["components"]["schemas"]["Backup"]["properties"]["phase"]
    names = schema["components"]["schemas"][phase["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"] \
        if "allOf" in phase else phase["enum"]  # fmt: skip
    assert set(names) == {"New", "InProgress", "Completed", "PartiallyFailed", "Failed"}


def test_the_docs_page_uses_no_inline_script_and_no_cdn(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert re.search(r"<script>\s*\S", html) is None, "an inline script breaks the site's CSP"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


@pytest.mark.parametrize("body", ["BackupCreate", "ScheduleWrite", "PatchedScheduleWrite"])
def test_a_body_documents_every_backup_option(schema, body):
    """Each option the form takes is in the body's schema (a field shared between
    names once left only the last of the four lists in a schedule's)."""
    properties = schema["components"]["schemas"][body]["properties"]
    lists = ("include_namespaces", "exclude_namespaces", "include_resources", "exclude_resources")
    for name in (*lists, "cluster_resources", "label_selector", "include_disks", "ttl"):
        assert name in properties, name
    assert all(properties[name]["type"] == "array" for name in lists)
