"""/metrics: who may read it, that Prometheus's own parser reads it, that its
values move when jobs end, that a scrape costs the same queries whatever the
size, and that the Grafana dashboard only uses metrics that exist."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backups.models import Status
from tests import factories

TOKEN = "metrics-token-for-tests"
DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "palette-dashboard.json"


@pytest.fixture
def token(settings):
    settings.PALETTE_METRICS_TOKEN = TOKEN
    settings.PALETTE_METRICS_ALLOW = []


def scrape(client) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def value(families: dict, family: str, sample: str, **labels) -> float:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no {sample} {labels}")


def test_it_does_not_exist_without_a_token_or_an_allow_list(client, settings):
    settings.PALETTE_METRICS_TOKEN, settings.PALETTE_METRICS_ALLOW = "", []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "header", ["", "Bearer wrong", f"bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"]
)
def test_a_missing_or_wrong_token_is_refused(client, token, header, db):
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"palette_" not in response.content


def test_an_allowed_address_needs_no_token(client, settings, db):
    settings.PALETTE_METRICS_TOKEN = ""
    settings.PALETTE_METRICS_ALLOW = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="not-an-address").status_code == 401


def test_it_only_answers_get(client, token, db):
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_it_parses_and_every_name_is_prefixed(client, token, world):
    families = scrape(client)
    assert families and all(name.startswith("palette_") for name in families)
    expected = {
        "palette_jobs": "counter",
        "palette_jobs_queued": "gauge",
        "palette_jobs_running": "gauge",
        "palette_job_duration_seconds": "histogram",
        "palette_job_size_bytes": "histogram",
        "palette_last_successful_backup_timestamp_seconds": "gauge",
        "palette_last_successful_etcd_snapshot_timestamp_seconds": "gauge",
        "palette_location_available": "gauge",
        "palette_location_validated_timestamp_seconds": "gauge",
        "palette_worker_heartbeat_timestamp_seconds": "gauge",
    }
    assert {name: families[name].type for name in expected} == expected


def test_its_values_move_after_a_backup(client, token, world):
    before = scrape(client)
    done = timezone.now()
    factories.backup(world.cluster, world.location, status=Status.COMPLETED, size_bytes=3 << 20,
                     started_at=done - timedelta(seconds=42), finished_at=done)  # fmt: skip
    after = scrape(client)
    labels = {"kind": "backup", "status": "completed"}
    assert value(after, "palette_jobs", "palette_jobs_total", **labels) == (
        value(before, "palette_jobs", "palette_jobs_total", **labels) + 1
    )
    duration = "palette_job_duration_seconds"
    assert value(after, duration, f"{duration}_sum", kind="backup") == pytest.approx(
        value(before, duration, f"{duration}_sum", kind="backup") + 42
    )
    assert value(after, duration, f"{duration}_bucket", kind="backup", le="60.0") == (
        value(before, duration, f"{duration}_bucket", kind="backup", le="60.0") + 1
    )
    size = "palette_job_size_bytes"
    assert value(after, size, f"{size}_count", kind="backup") == (
        value(before, size, f"{size}_count", kind="backup") + 1
    )
    last = "palette_last_successful_backup_timestamp_seconds"
    assert value(after, last, last, cluster=world.cluster.name) == pytest.approx(done.timestamp())


def test_queue_running_workers_and_locations(client, token, world):
    now = timezone.now()
    factories.backup(world.cluster, world.location, status=Status.PENDING)
    factories.backup(world.cluster, world.location, status=Status.RUNNING, heartbeat_at=now,
                     worker="w1@node-a pid 4242")  # fmt: skip
    type(world.location).objects.filter(pk=world.location.pk).update(status="available")
    families = scrape(client)
    assert value(families, "palette_jobs_queued", "palette_jobs_queued", kind="backup") == 1
    assert value(families, "palette_jobs_running", "palette_jobs_running", kind="backup") == 1
    beat = "palette_worker_heartbeat_timestamp_seconds"
    assert value(families, beat, beat, worker="w1@node-a") == pytest.approx(now.timestamp())
    available = "palette_location_available"
    assert value(families, available, available, location=world.location.name) == 1


def test_no_backup_name_is_a_label(client, token, world):
    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert world.backup.name not in body and world.snapshot.name not in body


def test_a_scrape_costs_the_same_queries_whatever_the_size(client, token, world):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    few = queries()
    for n in range(50):
        cluster = factories.cluster(world.workspace, f"many-{n}")
        factories.backup(cluster, world.location, status=Status.FAILED, worker=f"w{n}@h pid 1",
                         started_at=timezone.now(), finished_at=timezone.now(),
                         heartbeat_at=timezone.now())  # fmt: skip
    assert queries() == few
    print(f"/metrics costs {few} queries")


def test_the_dashboard_uses_only_metrics_that_exist(client, token, world):
    exposed = set()
    for family in scrape(client).values():
        # A family with no sample yet (no cluster has a good backup) still exists.
        exposed |= {family.name, f"{family.name}_total"} | {s.name for s in family.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"palette_\w+", target["expr"])
    }
    assert len(used) >= 8
    assert used <= exposed, used - exposed
