"""Notifications end to end in one process: a job really ends (the engine runs
against an unreachable cluster), ``job_finished`` creates the deliveries, and
each attempt goes to a real HTTP receiver on loopback or to Django's outbox."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from backups.jobs import JOBS, reap
from backups.models import Status
from locations.models import BackupLocation
from notifications import sending
from notifications.delivery import backoff
from notifications.models import Delivery, Event, Rule
from notifications.payload import SCHEMA, job_event
from tests.webhook_receiver import receiver, signature_ok


@pytest.fixture
def local_store(world, tmp_path):
    BackupLocation.objects.filter(pk=world.location.pk).update(path=str(tmp_path))
    return tmp_path


def rule(world, channel=Rule.Channel.WEBHOOK, events=(Event.BACKUP_FAILED,), **fields) -> Rule:
    return Rule.objects.create(
        workspace=world.workspace, name=f"rule-{Rule.objects.count()}", channel=channel,
        events=[str(e) for e in events], **fields,
    )  # fmt: skip


def failed_backup(world, captured) -> list[Delivery]:
    """Run the world's backup for real (its cluster is unreachable): it fails, and
    returns the deliveries its end created."""
    Delivery.objects.all().delete()
    type(world.backup).objects.filter(pk=world.backup.pk).update(status=Status.PENDING)
    with captured() as queued:
        assert JOBS["backup"].run(world.backup.pk) == Status.FAILED
    deliveries = list(Delivery.objects.order_by("pk"))
    assert len(queued) == len(deliveries)  # each one queued after commit
    return deliveries


def test_it_signs_and_delivers_a_failed_backup(
    world, local_store, django_capture_on_commit_callbacks
):
    with receiver(200) as hook:
        webhook = rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        assert sending.deliver(delivery.pk) == Delivery.Status.DELIVERED
        [request] = hook.wait_for(1)
    assert request.path == "/hooks/palette"
    assert signature_ok(webhook.secret, request)
    assert request.headers["X-Palette-Event"] == "backup.failed"
    body = json.loads(request.body)
    assert body["schema"] == SCHEMA and body["event"] == "backup.failed"
    assert body["workspace"] == {"slug": world.workspace.slug, "name": world.workspace.name}
    assert body["subject"]["name"] == world.backup.name
    assert (
        body["subject"]["status"] == "failed" and "connection refused" in body["subject"]["error"]
    )
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_code == 200
    assert delivery.attempt_log[0]["code"] == 200


def test_a_tampered_body_does_not_verify(world, local_store, django_capture_on_commit_callbacks):
    with receiver(200) as hook:
        webhook = rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        sending.deliver(delivery.pk)
        [request] = hook.wait_for(1)
    request.body = request.body.replace(b"failed", b"succeeded")
    assert not signature_ok(webhook.secret, request)


def test_a_500_is_retried_with_backoff_and_each_code_is_logged(
    world, local_store, settings, django_capture_on_commit_callbacks
):
    settings.PALETTE_NOTIFY_RETRY_SECONDS = 0
    with receiver(500, 500, 200) as hook:
        rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks() as queued:
            assert sending.deliver(delivery.pk) == Delivery.Status.RETRYING
        assert len(queued) == 1  # the next attempt is queued with its countdown
        assert sending.deliver(delivery.pk) == Delivery.Status.RETRYING
        assert sending.deliver(delivery.pk) == Delivery.Status.DELIVERED
        assert sending.deliver(delivery.pk) == "skipped"  # delivered once, never again
        hook.wait_for(3)
    delivery.refresh_from_db()
    assert [a["code"] for a in delivery.attempt_log] == [500, 500, 200]
    assert delivery.attempt_log[0]["error"] == "answered HTTP 500"


def test_the_backoff_doubles(settings):
    settings.PALETTE_NOTIFY_RETRY_SECONDS = 30
    assert [backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_a_retry_waits_for_its_time(
    world, local_store, settings, django_capture_on_commit_callbacks
):
    settings.PALETTE_NOTIFY_RETRY_SECONDS = 600
    with receiver(500) as hook:
        rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        sending.deliver(delivery.pk)
        assert sending.deliver(delivery.pk) == "skipped"  # not due for ten minutes
        assert len(hook.requests) == 1


def test_it_gives_up_after_the_last_attempt(
    world, local_store, settings, django_capture_on_commit_callbacks
):
    settings.PALETTE_NOTIFY_RETRY_SECONDS = 0
    settings.PALETTE_NOTIFY_ATTEMPTS = 2
    with receiver(503) as hook:
        rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        sending.deliver(delivery.pk)
        assert sending.deliver(delivery.pk) == Delivery.Status.FAILED
        assert sending.deliver(delivery.pk) == "skipped"
    assert Delivery.objects.get(pk=delivery.pk).attempts == 2


def test_a_redirect_is_never_followed(
    world, local_store, settings, django_capture_on_commit_callbacks
):
    settings.PALETTE_NOTIFY_ATTEMPTS = 1
    with receiver(200) as target, receiver(302) as hook:
        hook.redirect_to = target.url
        rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        assert sending.deliver(delivery.pk) == Delivery.Status.FAILED
        hook.wait_for(1)
        assert target.requests == []
    assert (
        Delivery.objects.get(pk=delivery.pk).attempt_log[0]["error"] == "redirects are not followed"
    )


def test_the_egress_policy_is_applied_when_sending(
    world, local_store, settings, django_capture_on_commit_callbacks
):
    """Saved while loopback was allowed, sent after it no longer is: refused at
    the address dialled, for good (no retry), and the receiver hears nothing."""
    with receiver(200) as hook:
        rule(world, url=hook.url.replace("127.0.0.1", "localhost"), url_host="localhost")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        settings.PALETTE_EGRESS_ALLOW = []
        assert sending.deliver(delivery.pk) == Delivery.Status.FAILED
        assert hook.requests == []
    assert "is not allowed" in Delivery.objects.get(pk=delivery.pk).attempt_log[0]["error"]


def test_a_refused_connection_is_retried_and_said_plainly(
    world, local_store, django_capture_on_commit_callbacks
):
    rule(world, url="http://127.0.0.1:9/hooks/secret-token", url_host="127.0.0.1")
    [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
    assert sending.deliver(delivery.pk) == Delivery.Status.RETRYING
    entry = Delivery.objects.get(pk=delivery.pk).attempt_log[0]
    assert entry["code"] is None and "secret-token" not in entry["error"]
    assert "refused" in entry["error"]


def test_it_mails_the_rule_recipients(world, local_store, django_capture_on_commit_callbacks):
    rule(world, Rule.Channel.EMAIL, recipients="ops@example.org, oncall@example.org")
    [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
    assert sending.deliver(delivery.pk) == Delivery.Status.DELIVERED
    [message] = mail.outbox
    assert message.to == ["ops@example.org", "oncall@example.org"]
    assert world.backup.name in message.subject and "failed" in message.subject
    assert '"event": "backup.failed"' in message.body


def test_a_slack_rule_posts_text(world, local_store, django_capture_on_commit_callbacks):
    with receiver(200) as hook:
        rule(world, Rule.Channel.SLACK, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        sending.deliver(delivery.pk)
        [request] = hook.wait_for(1)
    body = json.loads(request.body)
    assert list(body) == ["text"] and world.backup.name in body["text"]


def test_only_rules_asking_for_the_event_get_it(
    world, local_store, django_capture_on_commit_callbacks
):
    rule(world, Rule.Channel.EMAIL, events=[Event.BACKUP_SUCCEEDED], recipients="a@example.org")
    rule(world, Rule.Channel.EMAIL, events=[Event.RESTORE_FAILED], recipients="b@example.org")
    rule(world, Rule.Channel.EMAIL, recipients="c@example.org", enabled=False)
    assert failed_backup(world, django_capture_on_commit_callbacks) == []


def test_another_workspaces_rules_hear_nothing(
    world, local_store, django_capture_on_commit_callbacks
):
    from tests import factories

    Rule.objects.create(workspace=factories.workspace("Elsewhere"), name="theirs",
                        channel=Rule.Channel.EMAIL, recipients="x@example.org",
                        events=[Event.BACKUP_FAILED])  # fmt: skip
    assert failed_backup(world, django_capture_on_commit_callbacks) == []


@pytest.mark.parametrize(
    "status, event",
    [
        (Status.FAILED, "backup.failed"),
        (Status.PARTIALLY_FAILED, "backup.partially_failed"),
        (Status.COMPLETED, "backup.succeeded"),
        (Status.CANCELLED, None),
    ],
)
def test_each_final_status_names_its_event(world, status, event):
    world.backup.status = status
    found = job_event(world.backup)
    assert (found[0] if found else None) == event
    assert event is None or event in Event.values


def test_a_restore_preview_does_not_notify(world):
    world.restore.status, world.restore.is_preview = Status.FAILED, True
    assert job_event(world.restore) is None
    world.restore.is_preview = False
    assert job_event(world.restore)[0] == "restore.failed"


@pytest.mark.parametrize("kind, event", [("backup", "backup.failed"), ("restore", "restore.failed"),
                                         ("etcd_snapshot", "etcd_snapshot.failed")])  # fmt: skip
def test_a_reaped_job_is_announced_once(world, kind, event):
    rule(world, Rule.Channel.EMAIL, events=[event], recipients="ops@example.org")
    row = {"backup": world.backup, "restore": world.restore, "etcd_snapshot": world.snapshot}[kind]
    old = timezone.now() - timedelta(hours=1)
    type(row).objects.filter(pk=row.pk).update(
        status=Status.RUNNING, heartbeat_at=old, started_at=old
    )
    reap()
    reap()
    [delivery] = Delivery.objects.all()
    assert (
        delivery.event == event
        and "stopped reporting progress" in delivery.payload["subject"]["error"]
    )


def test_a_lost_delivery_task_is_sent_by_the_periodic_pass(world, local_store, settings,
                                                          django_capture_on_commit_callbacks):  # fmt: skip
    with receiver(200) as hook:
        rule(world, url=hook.url, url_host="127.0.0.1")
        [delivery] = failed_backup(world, django_capture_on_commit_callbacks)
        assert sending.send_due() == 0  # just queued: its own task sends it
        Delivery.objects.filter(pk=delivery.pk).update(
            created_at=timezone.now() - timedelta(minutes=2)
        )
        assert sending.send_due() == 1
        hook.wait_for(1)
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.DELIVERED


def test_job_finished_is_sent_once_per_job(world, local_store):
    from backups.jobs.base import job_finished

    heard = []

    def listener(sender, row, **_):
        heard.append((sender.kind, row.pk, row.status))

    job_finished.connect(listener)
    try:
        type(world.backup).objects.filter(pk=world.backup.pk).update(status=Status.PENDING)
        JOBS["backup"].run(world.backup.pk)
        JOBS["backup"].run(world.backup.pk)  # a second delivery of the task: skipped
        assert heard == [("backup", world.backup.pk, Status.FAILED)]
    finally:
        job_finished.disconnect(listener)
