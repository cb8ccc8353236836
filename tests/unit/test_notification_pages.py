"""The notifications page of a workspace: a test per persona for each view, the
form's refusals, and what the page never shows (the webhook URL, the secret
after its one showing)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications import sending
from notifications.models import Delivery, Event, Rule
from tests import factories
from tests.conftest import PERSONAS
from tests.webhook_receiver import receiver, signature_ok

# Admins (directly or through a team) manage notifications; members who may see the
# workspace get 403; an outsider 404; anonymous goes to the login page.
ALLOWED = {"admin", "team_admin"}
SEES_WORKSPACE = {"operator", "viewer", "cluster_grantee"}
SECRET_URL = "http://127.0.0.1:9/hooks/T000/very-secret-token"


def expected(persona: str, ok: int) -> int:
    if persona in ALLOWED:
        return ok
    if persona in SEES_WORKSPACE:
        return 403
    return 302 if persona == "anonymous" else 404


@pytest.fixture
def hook_rule(world) -> Rule:
    return Rule.objects.create(
        workspace=world.workspace, name="pager", channel=Rule.Channel.WEBHOOK, url=SECRET_URL,
        url_host="127.0.0.1", events=[Event.BACKUP_FAILED],
    )  # fmt: skip


def url(world, name="notification_rules", rule=None) -> str:
    args = [world.workspace.slug] + ([rule.pk] if rule else [])
    return reverse(name, args=args)


def new_rule(**overrides) -> dict:
    data = {"name": "on-call", "events": [Event.BACKUP_FAILED, Event.RPO_MISSED],
            "channel": "email", "recipients": "ops@example.org"}  # fmt: skip
    data.update(overrides)
    return data


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_shows_the_page_to_admins_only(world, login, persona, hook_rule):
    response = login(world.users[persona]).get(url(world))
    assert response.status_code == expected(persona, 200)
    if persona in ALLOWED:
        body = response.content.decode()
        assert "pager" in body and "127.0.0.1" in body
        assert "very-secret-token" not in body and hook_rule.secret not in body


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_creates_a_rule_for_admins_only(world, login, persona):
    response = login(world.users[persona]).post(url(world), new_rule())
    assert response.status_code == expected(persona, 201)
    assert Rule.objects.filter(name="on-call").exists() == (persona in ALLOWED)


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_deletes_a_rule_for_admins_only(world, login, persona, hook_rule):
    response = login(world.users[persona]).post(url(world, "notification_rule_delete", hook_rule))
    assert response.status_code == expected(persona, 302)
    assert Rule.objects.filter(pk=hook_rule.pk).exists() == (persona not in ALLOWED)


@pytest.mark.parametrize("persona", PERSONAS)
def test_send_test_is_for_admins_only(world, login, persona, hook_rule):
    response = login(world.users[persona]).post(url(world, "notification_rule_test", hook_rule))
    assert response.status_code == expected(persona, 302)
    assert Delivery.objects.filter(event="test").exists() == (persona in ALLOWED)


def test_send_test_reaches_the_receiver_signed(world, login, django_capture_on_commit_callbacks):
    with receiver(200) as hook:
        rule = Rule.objects.create(workspace=world.workspace, name="hook", url=hook.url,
                                   channel=Rule.Channel.WEBHOOK, url_host="127.0.0.1",
                                   events=[Event.BACKUP_SUCCEEDED])  # fmt: skip
        client = login(world.users["admin"])
        with django_capture_on_commit_callbacks() as queued:
            client.post(url(world, "notification_rule_test", rule))
        assert len(queued) == 1
        [delivery] = Delivery.objects.filter(event="test")
        sending.deliver(delivery.pk)
        [request] = hook.wait_for(1)
    assert signature_ok(rule.secret, request)
    page = client.get(url(world)).content.decode()
    assert "HTTP 200" in page and "Delivered" in page


def test_the_log_shows_each_failed_attempt(world, login, hook_rule, settings):
    settings.PALETTE_NOTIFY_RETRY_SECONDS = 0
    with receiver(500, 502, 200) as hook:
        Rule.objects.filter(pk=hook_rule.pk).update(url=hook.url)
        delivery = Delivery.objects.create(rule=hook_rule, event="test", summary="s", payload={})
        for _ in range(3):
            sending.deliver(delivery.pk)
    page = login(world.users["admin"]).get(url(world)).content.decode()
    assert page.index("HTTP 500") < page.index("HTTP 502") < page.index("HTTP 200")


def test_the_secret_is_shown_once_at_creation(world, login):
    client = login(world.users["admin"])
    response = client.post(url(world), new_rule(channel="webhook", url="http://127.0.0.1:9/h"))
    assert response.status_code == 201
    rule = Rule.objects.get(name="on-call")
    assert rule.secret in response.content.decode()
    assert rule.url == "http://127.0.0.1:9/h" and rule.url_host == "127.0.0.1"
    assert rule.secret not in client.get(url(world)).content.decode()


def test_another_workspaces_rule_is_not_found(world, login, hook_rule):
    theirs = factories.workspace("Theirs")
    theirs.grant("admin", user=world.users["admin"])
    other_url = reverse("notification_rule_delete", args=[theirs.slug, hook_rule.pk])
    assert login(world.users["admin"]).post(other_url).status_code == 404
    assert Rule.objects.filter(pk=hook_rule.pk).exists()


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"recipients": ""}, "recipients", "at least one"),
        ({"recipients": "ops@example.org, not-an-address"}, "recipients", "not an e-mail address"),
        ({"channel": "webhook", "url": ""}, "url", "Give the webhook"),
        ({"channel": "webhook", "url": "ftp://example.org/x"}, "url", "must start with https"),
        ({"channel": "slack", "url": "http://[::1"}, "url", "must start with https"),
        ({"channel": "webhook", "url": "http://example.org:99999/"}, "url", "must start with"),
        ({"events": []}, "events", "required"),
        ({"events": ["backup.exploded"]}, "events", "not one of the available"),
        ({"channel": "pigeon"}, "channel", "not one of the available"),
        ({"name": "x" * 101}, "name", "at most 100"),
    ],
)
def test_bad_input_is_a_400_and_saves_nothing(world, login, overrides, field, message):
    response = login(world.users["admin"]).post(url(world), new_rule(**overrides))
    assert response.status_code == 400
    errors = response.context["form"].errors[field]
    assert any(message in error for error in errors), errors
    assert not Rule.objects.exists()


def test_a_webhook_to_a_private_address_is_refused_at_save(world, login, settings):
    settings.PALETTE_EGRESS_ALLOW = []
    for address in ("http://127.0.0.1:8080/x", "http://169.254.169.254/latest", "http://10.0.0.1/"):
        response = login(world.users["admin"]).post(
            url(world), new_rule(channel="webhook", url=address)
        )
        assert response.status_code == 400
        assert "is not allowed" in str(response.context["form"].errors["url"])
    assert not Rule.objects.exists()


def test_a_duplicate_name_is_refused(world, login, hook_rule):
    response = login(world.users["admin"]).post(url(world), new_rule(name="pager"))
    assert response.status_code == 400
    assert Rule.objects.filter(name="pager").count() == 1


def test_the_workspace_page_links_to_it_for_admins(world, login):
    link = url(world)
    page = login(world.users["admin"]).get(world.workspace.get_absolute_url()).content.decode()
    assert link in page
    page = login(world.users["viewer"]).get(world.workspace.get_absolute_url()).content.decode()
    assert link not in page
