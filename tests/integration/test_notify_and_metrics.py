"""Done-when 3 and 4 of the integrations issue, on a real Celery worker and cluster A:
a backup that fails sends a signed webhook (retried after a 500) and an e-mail within
seconds; a backup that completes moves /metrics, read with Prometheus's parser."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.core import mail
from prometheus_client.parser import text_string_to_metric_families

from backups.jobs import start_backup
from backups.models import Backup, Status
from notifications.models import Delivery, Event, Rule
from tests import factories
from tests.browser.conftest import worker  # noqa: F401  (a real Celery worker in threads)
from tests.webhook_receiver import receiver, signature_ok
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
]
TOKEN = "integration-metrics-token"


@pytest.fixture
def place(devenv, tmp_path, settings):
    settings.PALETTE_NOTIFY_RETRY_SECONDS = 1
    settings.PALETTE_METRICS_TOKEN = TOKEN
    ws = factories.workspace("Notify")
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    cluster = Cluster.objects.create(
        workspace=ws, name="notify-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )
    store = tmp_path / "store"
    store.mkdir()
    return ws, cluster, factories.location(ws, "notify-disk", path=str(store))


def wait_until(condition, timeout: float = 60.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout} s")


def final(backup: Backup) -> Backup:
    return wait_until(
        lambda: Backup.objects.filter(pk=backup.pk).exclude(status__in=["pending", "running"]).first(),
        timeout=180, what=f"the end of backup {backup.name}",
    )  # fmt: skip


def scrape(client) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_a_failed_backup_sends_a_signed_webhook_retried_after_a_500_and_an_email(place):
    ws, cluster, location = place
    with receiver(500, 200) as hook:
        webhook = Rule.objects.create(workspace=ws, name="hook", channel=Rule.Channel.WEBHOOK,
                                      url=hook.url, url_host="127.0.0.1",
                                      events=[Event.BACKUP_FAILED])  # fmt: skip
        Rule.objects.create(workspace=ws, name="mail", channel=Rule.Channel.EMAIL,
                            recipients="oncall@example.org", events=[Event.BACKUP_FAILED])  # fmt: skip
        # The store is gone under the location: the backup of cluster A fails on it.
        Path(location.path).rmdir()
        Path(location.path).write_text("a file where the store's directory was")
        backup = final(start_backup(cluster, location, include_namespaces=["shop"]))
        assert backup.status == Status.FAILED
        first, second = hook.wait_for(2, timeout=30)
        seconds = time.time() - backup.finished_at.timestamp()
    for request in (first, second):
        assert signature_ok(webhook.secret, request)
        body = json.loads(request.body)
        assert body["event"] == "backup.failed" and body["subject"]["name"] == backup.name
        assert body["subject"]["cluster"] == "notify-a" and body["subject"]["error"]
    assert first.headers["X-Palette-Delivery"] == second.headers["X-Palette-Delivery"]
    delivery = Delivery.objects.get(rule=webhook)
    wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == "delivered", 10)
    assert [a["code"] for a in Delivery.objects.get(pk=delivery.pk).attempt_log] == [500, 200]
    wait_until(lambda: mail.outbox, 10, "the e-mail")
    assert mail.outbox[0].to == ["oncall@example.org"] and backup.name in mail.outbox[0].subject
    print(f"webhook delivered (after one 500) {seconds:.1f} s after the backup failed")


def test_metrics_move_after_a_backup_completes(place, client):
    ws, cluster, location = place
    Rule.objects.create(workspace=ws, name="ok", channel=Rule.Channel.EMAIL,
                        recipients="team@example.org", events=[Event.BACKUP_SUCCEEDED])  # fmt: skip
    before = scrape(client)
    backup = final(start_backup(cluster, location, include_namespaces=["shop"]))
    assert backup.status == Status.COMPLETED, backup.error
    after = scrape(client)
    done = ("palette_jobs_total", (("kind", "backup"), ("status", "completed")))
    assert after[done] == before.get(done, 0) + 1
    count = ("palette_job_size_bytes_count", (("kind", "backup"),))
    assert after[count] == before.get(count, 0) + 1
    last = ("palette_last_successful_backup_timestamp_seconds",
            (("cluster", "notify-a"), ("workspace", ws.slug)))  # fmt: skip
    assert after[last] == pytest.approx(backup.finished_at.timestamp())
    wait_until(lambda: mail.outbox, 10, "the success e-mail")
    assert "succeeded" in mail.outbox[0].subject
