"""Personal API tokens: the page (made, shown once, listed, revoked), the
create_token command, and the Bearer authentication itself."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken, digest, parse_lifetime
from workspaces.models import AuditEvent

SECRET = re.compile(r"pbc_[A-Za-z0-9_-]{43}")


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_it_shows_a_new_token_once_and_stores_only_its_digest(world, login):
    client = login(world.users["operator"])
    page = client.post(reverse("token_create"), {"name": "ci", "expires_in": "30d"})
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    secret = SECRET.search(page.content.decode())[0]
    token = ApiToken.objects.get(user=world.users["operator"])
    assert token.digest == digest(secret) and secret not in (token.digest, token.shown)
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    listing = client.get(reverse("token_list")).content.decode()
    assert token.shown in listing and secret not in listing
    assert secret not in str(list(AuditEvent.objects.values()))


def test_a_token_acts_as_its_user_and_records_its_last_use(world, client):
    token, secret = ApiToken.issue(world.users["viewer"], "ci")
    response = client.get("/api/v1/backups/", **bearer(secret))
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == [world.backup.name]
    token.refresh_from_db()
    assert token.last_used_at is not None
    outsider = ApiToken.issue(world.users["outsider"], "ci")[1]
    assert client.get("/api/v1/backups/", **bearer(outsider)).json()["count"] == 0


def test_revoking_on_the_page_ends_the_token_at_once(world, login):
    token, secret = ApiToken.issue(world.users["operator"], "ci")
    api = Client()
    assert api.get("/api/v1/workspaces/", **bearer(secret)).status_code == 200
    response = login(world.users["operator"]).post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 302
    assert api.get("/api/v1/workspaces/", **bearer(secret)).status_code == 401
    assert "revoked" in login(world.users["operator"]).get(reverse("token_list")).content.decode()


def test_nobody_sees_or_revokes_anyone_elses_token(world, login):
    token, _ = ApiToken.issue(world.users["operator"], "operators-ci")
    client = login(world.users["admin"])
    assert "operators-ci" not in client.get(reverse("token_list")).content.decode()
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_page_says_what_is_wrong_with_the_form(world, login):
    client = login(world.users["viewer"])
    page = client.post(reverse("token_create"), {"name": "  ", "expires_in": "5y"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "This field is required." in text or "Give the token a name." in text
    assert "Select a valid choice" in text
    assert not ApiToken.objects.exists()


def test_a_read_only_token_is_marked_and_refused_changes(world, login, client):
    page = login(world.users["admin"]).post(
        reverse("token_create"), {"name": "dash", "expires_in": "", "read_only": "on"}
    )
    secret = SECRET.search(page.content.decode())[0]
    assert "It is read-only." in page.content.decode()
    assert ApiToken.objects.get().expires_at is None
    client.logout()
    response = client.post(f"/api/v1/clusters/{world.cluster.name}/health/", **bearer(secret))
    assert response.status_code == 403


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer a b",
        "Bearer pbc_nope",
        "Bearer not-even-ours",
        "Token pbc_x",
        "Basic eDp5",
    ],
)
def test_a_bad_authorization_header_is_401_or_ignored(world, client, header):
    response = client.get("/api/v1/workspaces/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_a_token_of_an_inactive_user_is_401(world, client):
    _, secret = ApiToken.issue(world.users["admin"], "ci")
    world.users["admin"].is_active = False
    world.users["admin"].save()
    assert client.get("/api/v1/workspaces/", **bearer(secret)).status_code == 401


def test_the_session_works_too_with_csrf_on_changes(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["admin"])
    assert client.get("/api/v1/workspaces/").status_code == 200
    response = client.post(f"/api/v1/schedules/{world.schedule.pk}/pause/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_the_command_prints_a_working_token(world, client):
    out, err = StringIO(), StringIO()
    call_command("create_token", "operator", "--name", "gitops", "--expires-in", "12h",
                 "--read-only", stdout=out, stderr=err)  # fmt: skip
    secret = out.getvalue().strip()
    assert SECRET.fullmatch(secret)
    assert "read-only" in err.getvalue() and secret not in err.getvalue()
    token = ApiToken.objects.get(name="gitops")
    assert token.read_only and timedelta(hours=11) < token.expires_at - timezone.now()
    assert client.get("/api/v1/backups/", **bearer(secret)).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "There is no user named 'nobody'"),
        (["admin", "--expires-in", "30 days"], "is not a lifetime"),
        (["admin", "--expires-in", "0d"], "between one minute and ten years"),
        (["admin", "--expires-in", "99999d"], "between one minute and ten years"),
        (["admin", "--name", "   "], "Give the token a name"),
        (["ad\x00min"], "NUL character"),
        (["admin", "--name", "a\x00b"], "NUL character"),
    ],
)
def test_the_command_explains_bad_input(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_token", *args, stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), (" 90m ", timedelta(minutes=90))],
)
def test_lifetimes_parse(text, expected):
    assert parse_lifetime(text) == expected


@pytest.mark.parametrize("text", ["", "d", "30", "30s", "-1d", "1.5d", "30dd"])
def test_bad_lifetimes_are_refused(text):
    with pytest.raises(ValueError):
        parse_lifetime(text)


def test_support_staff_revoke_a_token_in_the_admin(world, client):
    from tests import factories

    token, secret = ApiToken.issue(world.users["operator"], "leaked")
    client.force_login(factories.user("support", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:api_apitoken_change", args=[token.pk])).content.decode()
    assert token.digest not in page and secret not in page
    client.post(
        reverse("admin:api_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert client.get("/api/v1/workspaces/", **bearer(secret)).status_code == 401
