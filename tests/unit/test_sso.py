"""Single sign-on against the real local provider (devenv/oidc.py), driven with
the test client: users are matched on issuer and subject, teams follow the
groups claim at each login, and it is all off by default."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from sso.models import Identity
from tests import factories
from tests.sso_support import GROUP, TEAM, provider_for
from workspaces.roles import Role

CONSOLE = "http://testserver"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def idp(settings, tmp_path, db):
    with provider_for(settings, tmp_path, CONSOLE) as found:
        yield found


def sso_login(client, username: str, password: str = "pw"):
    """The whole code flow: the console's redirect, the provider's login form, the callback."""
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    authorize = urlsplit(start["Location"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["code_challenge_method"] == "S256" and params["nonce"]
    form = urlencode({**params, "username": username, "password": password}).encode()
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"{authorize.scheme}://{authorize.netloc}/authorize", form)
        raise AssertionError("the provider did not redirect back")
    except urllib.error.HTTPError as answer:
        assert answer.code == 302
        back = urlsplit(answer.headers["Location"])
    return client.get(back.path, dict(parse_qs(back.query)))


def test_it_is_off_by_default(client, db):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert b"single sign-on" not in client.get("/accounts/login/").content


def test_the_login_page_offers_it_when_on(client, idp):
    assert b"Log in with single sign-on" in client.get("/accounts/login/").content


def test_the_discovery_document_names_the_endpoints(idp):
    provider, _ = idp
    discovery = f"{provider.issuer}/.well-known/openid-configuration"
    with urllib.request.urlopen(discovery) as answer:  # noqa: S310  (the local provider)
        doc = json.load(answer)
    assert doc["issuer"] == provider.issuer and doc["code_challenge_methods_supported"] == ["S256"]
    with urllib.request.urlopen(doc["jwks_uri"]) as answer:  # noqa: S310
        assert json.load(answer)["keys"][0]["kty"] == "RSA"


def test_a_group_gives_the_role_and_losing_it_takes_it_away(client, idp, world):
    _, directory = idp
    world.workspace.grant(Role.OPERATOR, group=Group.objects.get_or_create(name=TEAM)[0])
    sub = directory.add("dana", "pw", [GROUP, "unmapped"])
    assert sso_login(client, "dana").status_code == 302
    user = get_user_model().objects.get(sso_identities__subject=sub)
    assert user.groups.filter(name=TEAM).exists()
    assert client.get(f"/clusters/{world.cluster.name}/backups/new/").status_code == 200
    directory.set_groups("dana", [])
    client.logout()
    sso_login(client, "dana")
    assert not user.groups.filter(name=TEAM).exists()
    assert client.get(f"/clusters/{world.cluster.name}/backups/new/").status_code == 404
    assert Identity.objects.get(subject=sub).groups == []


def test_users_are_matched_on_subject_never_on_email(client, idp):
    _, directory = idp
    local = factories.user("mallory-target", email="boss@example.org")
    sub = directory.add("mallory", "pw", [], email="boss@example.org")
    sso_login(client, "mallory")
    user = get_user_model().objects.get(sso_identities__subject=sub)
    assert user != local and user.username == "mallory"
    client.logout()
    sso_login(client, "mallory")  # the second login finds the same user
    assert get_user_model().objects.filter(sso_identities__subject=sub).count() == 1


def test_a_taken_username_gets_a_suffix(client, idp):
    _, directory = idp
    factories.user("erin")
    sub = directory.add("erin", "pw", [])
    sso_login(client, "erin")
    assert get_user_model().objects.get(sso_identities__subject=sub).username == "erin-2"


def test_teams_outside_the_mapping_are_left_alone(client, idp):
    _, directory = idp
    sub = directory.add("frank", "pw", [])
    sso_login(client, "frank")
    user = get_user_model().objects.get(sso_identities__subject=sub)
    local_team = factories.team("local-break-glass", user)
    client.logout()
    sso_login(client, "frank")
    assert user.groups.filter(pk=local_team.pk).exists()


def test_a_deactivated_user_is_not_logged_in(client, idp):
    _, directory = idp
    sub = directory.add("gina", "pw", [])
    sso_login(client, "gina")
    get_user_model().objects.filter(sso_identities__subject=sub).update(is_active=False)
    client.logout()
    answer = sso_login(client, "gina")
    assert "sso=failed" in answer["Location"]
    assert "_auth_user_id" not in client.session


def test_a_token_from_another_issuer_is_refused(client, idp, settings):
    _, directory = idp
    directory.add("hal", "pw", [])
    settings.PALETTE_OIDC_ISSUER = "http://127.0.0.1:1"  # the console expects someone else
    answer = sso_login(client, "hal")
    assert "sso=failed" in answer["Location"]
    assert not Identity.objects.exists()


def test_a_forged_state_is_refused(client, idp):
    client.get("/oidc/authenticate/")
    answer = client.get("/oidc/callback/", {"code": "made-up", "state": "forged"})
    assert answer.status_code in (302, 400)
    assert "_auth_user_id" not in client.session


def test_a_provider_that_refuses_the_code_is_a_failed_login_not_a_500(client, idp, settings):
    _, directory = idp
    directory.add("ivy", "pw", [])
    settings.OIDC_RP_CLIENT_SECRET = "not-the-secret"
    answer = sso_login(client, "ivy")
    assert answer.status_code == 302 and "sso=failed" in answer["Location"]
    assert "not-the-secret" not in answer.content.decode()
