"""Single sign-on in Chromium, through the local OpenID provider (devenv/oidc.py):
a user lands with the role their group grants, and loses it at the next login
once the provider no longer lists the group."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from tests import factories
from tests.sso_support import GROUP, TEAM, provider_for
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sso_log_in(page, base: str, username: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.click("text=Log in with single sign-on")
    page.wait_for_selector("h1:has-text('Local OpenID provider')")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/")


def test_a_group_gives_the_role_and_losing_it_takes_it_away(page, live_server, settings, tmp_path):
    workspace = factories.workspace("Storefront")
    cluster = factories.cluster(workspace, "storefront-prod")
    workspace.grant(Role.OPERATOR, group=Group.objects.create(name=TEAM))
    new_backup = f"/clusters/{cluster.name}/backups/new/"
    with provider_for(settings, tmp_path, live_server.url) as (_, directory):
        directory.add("olivia", "correct horse", [GROUP])

        sso_log_in(page, live_server.url, "olivia", "correct horse")
        assert "olivia" in page.inner_text(".usermenu")
        page.click("text=Workspaces")
        page.click("a:has-text('Storefront')")
        assert page.locator("a:has-text('Back up all clusters')").count() == 1
        assert page.goto(new_backup).status == 200

        directory.set_groups("olivia", [])
        sso_log_in(page, live_server.url, "olivia", "correct horse")
        assert page.goto(new_backup).status == 404
        page.goto("/workspaces/")
        assert page.locator("a:has-text('Storefront')").count() == 0


def test_a_wrong_password_at_the_provider_logs_nobody_in(page, live_server, settings, tmp_path):
    with provider_for(settings, tmp_path, live_server.url) as (_, directory):
        directory.add("pat", "right", [GROUP])
        page.goto("/accounts/login/")
        page.click("text=Log in with single sign-on")
        page.fill("#username", "pat")
        page.fill("#password", "wrong")
        page.click("#sign-in")
        assert "Wrong username or password" in page.inner_text("body")
    assert not Group.objects.filter(name=TEAM, user__username="pat").exists()
