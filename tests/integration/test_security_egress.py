"""Medium finding: SSRF. Kubeconfig servers, store endpoints, etcd endpoints and a
GCS ``token_uri`` reached the console's internal network, and the errors worked
as a port scanner (GCS echoed the response body). With the server's default
policy (nothing internal allowed), devenv's real services on 127.0.0.1 are
refused through the page, the commands and the admin, with one plain sentence."""

from __future__ import annotations

import contextlib
import html
import http.server
import threading
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from locations.models import BackupLocation
from locations.validation import validate
from tests import factories
from tests.integration.provider_support import location, service_account_json
from workspaces.kube import check_health, flatten_kubeconfig
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = pytest.mark.integration

REFUSED = "is not allowed: the console does not connect to loopback, link-local, private"
BODY = "INTERNAL-ONLY-ANSWER-5d1c"


@pytest.fixture
def deny(settings):
    """The server's default: no internal address is allowed."""
    settings.PALETTE_EGRESS_ALLOW = []


@pytest.fixture
def tenant(db, client):
    ws = factories.workspace("Tenant")
    admin = factories.user("tenant-admin")
    ws.grant(Role.ADMIN, user=admin)
    client.force_login(admin)
    return ws, client


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def test_store_endpoints_on_the_internal_network_are_refused(devenv, minio_bucket, deny, tenant):
    ws, client = tenant
    data = {"name": "probe", "workspace": ws.pk, "provider": "minio", "bucket": minio_bucket,
            "force_path_style": "on", "access_key": devenv["MINIO_ACCESS_KEY"],
            "secret_key": devenv["MINIO_SECRET_KEY"], "action": "save"}  # fmt: skip
    seen = set()
    # An open port (MinIO), a closed one, the metadata address: one and the same answer.
    for endpoint in (devenv["MINIO_ENDPOINT"], "http://127.0.0.1:9", "http://169.254.169.254"):
        response = client.post(reverse("location_create"), {**data, "endpoint_url": endpoint})
        text = page_text(response)
        assert REFUSED in text, endpoint
        seen.add(text.count("connection refused") + text.count("timed out"))
    assert seen == {0}
    assert not BackupLocation.objects.filter(name="probe").exists()
    with pytest.raises(CommandError, match=REFUSED):
        call_command(
            "add_location", "probe", "--provider", "minio", "--bucket", minio_bucket,
            "--endpoint", devenv["MINIO_ENDPOINT"], "--path-style",
            "--access-key", devenv["MINIO_ACCESS_KEY"], "--secret-key", devenv["MINIO_SECRET_KEY"],
        )  # fmt: skip
    # Saved before the policy (or changed behind the console's back): refused at use.
    saved = location("minio", devenv, minio_bucket)
    saved.name = "old"
    saved.save()
    result = validate(saved)
    assert not result.ok and REFUSED in result.message


def test_an_allowed_endpoint_still_works(devenv, minio_bucket, settings):
    settings.PALETTE_EGRESS_ALLOW = ["127.0.0.1/32"]
    assert validate(location("minio", devenv, minio_bucket)).ok


@contextlib.contextmanager
def internal_service():
    """An internal HTTP service that answers every request with a private body."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = f'{{"error": "{BODY}", "message": "{BODY}"}}'.encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_gcs_token_uri_and_endpoint_are_checked_and_bodies_never_echoed(
    devenv, gcs_bucket, settings
):
    with internal_service() as url:
        key_json, _ = service_account_json(f"{url}/token")
        settings.PALETTE_EGRESS_ALLOW = []
        loc = location("gcs", devenv, gcs_bucket, credentials={"service_account_json": key_json})
        loc.endpoint_url = (
            "https://storage.googleapis.com"  # public: only the token_uri is internal
        )
        result = validate(loc)
        assert not result.ok and REFUSED in result.message and "token_uri" in result.message
        # Allowed (say, by mistake): whatever the service answers stays out of the message.
        settings.PALETTE_EGRESS_ALLOW = ["127.0.0.1/32"]
        for credentials, endpoint in (({"service_account_json": key_json}, devenv["GCS_ENDPOINT"]),
                                      ({}, url)):  # fmt: skip
            loc = location("gcs", devenv, gcs_bucket, credentials=credentials)
            loc.endpoint_url = endpoint
            result = validate(loc)
            assert not result.ok
            assert BODY not in result.message, result.message


def kubeconfig_upload(devenv) -> SimpleUploadedFile:
    return SimpleUploadedFile("kubeconfig", Path(devenv["CLUSTER_A_KUBECONFIG"]).read_bytes())


def test_kubeconfig_servers_and_etcd_endpoints_are_checked(devenv, deny, tenant, settings):
    ws, client = tenant
    response = client.post(
        reverse("cluster_register", args=[ws.slug]),
        {"name": "internal", "kubeconfig": kubeconfig_upload(devenv)},
    )
    assert response.status_code == 200
    assert REFUSED in page_text(response) and "API server" in page_text(response)
    with pytest.raises(CommandError, match=REFUSED):
        call_command("register_cluster", "internal", "--workspace", ws.slug,
                     "--kubeconfig", devenv["CLUSTER_A_KUBECONFIG"], "--allow-unreachable")  # fmt: skip
    assert not Cluster.objects.filter(name="internal").exists()
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    kubeconfig = flatten_kubeconfig(path.read_text(), path.parent)
    health = check_health(kubeconfig)  # every job's client goes through the same check
    assert not health.reachable and REFUSED in health.message
    # etcd: an API server allowed (by name here) with an internal etcd.
    settings.PALETTE_EGRESS_ALLOW = ["localhost"]
    localhost = kubeconfig.replace("https://127.0.0.1:", "https://localhost:")
    upload = SimpleUploadedFile("kubeconfig", localhost.encode())
    response = client.post(
        reverse("cluster_register", args=[ws.slug]),
        {"name": "internal", "kubeconfig": upload,
         "etcd_endpoint": devenv["CLUSTER_B_ETCD_ENDPOINT"]},
    )  # fmt: skip
    assert REFUSED in page_text(response) and "etcd endpoint" in page_text(response)
    assert not Cluster.objects.filter(name="internal").exists()


@pytest.fixture
def rebinding(monkeypatch):
    """Names whose DNS answers the test sets (the system cannot resolve .invalid)."""
    from palette_site import egress

    answers: dict[str, list[str]] = {}
    real = egress.resolve

    def resolve(host, port=None):
        if host in answers:
            return [egress.ipaddress.ip_address(a) for a in answers[host]]
        return real(host, port)

    monkeypatch.setattr(egress, "resolve", resolve)
    return answers


@pytest.mark.parametrize(
    ("kind", "endpoint_key"),
    [("minio", "MINIO_ENDPOINT"), ("s3-on-minio", "MINIO_ENDPOINT"), ("gcs", "GCS_ENDPOINT")],
)
def test_connections_go_to_the_checked_address(
    devenv, request, settings, rebinding, kind, endpoint_key
):
    """DNS rebinding: a name that passes when the location is built but resolves to a
    refused address when the client connects is refused at connect time; and the
    client connects to exactly the address that was checked."""
    from locations.providers import get_provider

    bucket = request.getfixturevalue(
        {"minio": "minio_bucket", "s3-on-minio": "minio_bucket", "gcs": "gcs_bucket"}[kind]
    )
    port = int(devenv[endpoint_key].rsplit(":", 1)[1])
    rebinding["rebind.invalid"] = ["127.0.0.1"]
    settings.PALETTE_EGRESS_ALLOW = ["127.0.0.1/32"]
    loc = location(kind, devenv, bucket)
    loc.endpoint_url = f"http://rebind.invalid:{port}"
    loc.force_path_style = True
    result = validate(loc)
    assert result.ok, result.message  # so every connection went to the checked 127.0.0.1
    provider = get_provider(loc)  # allowed when built...
    rebinding["rebind.invalid"] = ["169.254.169.254"]
    try:
        with pytest.raises(Exception, match=REFUSED):  # ...refused when connecting
            provider.put_bytes("metadata/x", b"x")
    finally:
        provider.close()


def test_a_cluster_connection_goes_to_the_checked_address(devenv, settings, rebinding):
    from kubernetes import client as k8s

    from palette_site import egress
    from workspaces.kube import api_client

    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    kubeconfig = flatten_kubeconfig(path.read_text(), path.parent)
    rebinding["rebind.invalid"] = ["127.0.0.1"]
    settings.PALETTE_EGRESS_ALLOW = ["127.0.0.1/32"]
    api = api_client(kubeconfig.replace("https://127.0.0.1:", "https://rebind.invalid:"))
    rebinding["rebind.invalid"] = ["10.0.0.1"]
    with pytest.raises(egress.EgressDenied, match=REFUSED), api:
        k8s.VersionApi(api).get_code(_request_timeout=3)
