"""A person creates a workspace, gives a colleague a role; only that colleague sees it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from tests import factories
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_granted_role_shows_the_workspace_to_that_user_only(page, log_in):
    lead = factories.user("lead")
    lead.user_permissions.add(Permission.objects.get(codename="add_workspace"))
    factories.user("second")
    factories.user("third")

    log_in("lead", PASSWORD)
    page.click("text=Workspaces")
    page.click("text=New workspace")
    page.fill("input[name=name]", "Platform")
    page.fill("textarea[name=description]", "Clusters of the platform team")
    page.click("button:has-text('Create workspace')")
    page.wait_for_selector("h1:has-text('Platform')")
    assert "you are its Admin" in page.inner_text("#messages")

    # Grant through the HTMX form: only the members section is swapped.
    page.fill("#members input[name=username]", "second")
    page.select_option("#members select[name=role]", "viewer")
    page.click("#members button:has-text('Grant')")
    page.wait_for_selector("#members td:has-text('second')")
    assert "Viewer" in page.inner_text("#members")
    # The audit trail on the page records it after a reload.
    page.reload()
    assert "granted" in page.inner_text("body")
    workspace_url = page.url

    log_in("second", PASSWORD)
    page.click("text=Workspaces")
    page.click("a:has-text('Platform')")
    assert page.url == workspace_url
    assert page.locator("text=Grant a role").count() == 0  # a Viewer cannot manage members

    log_in("third", PASSWORD)
    page.click("text=Workspaces")
    assert page.locator("a:has-text('Platform')").count() == 0
    response = page.goto(workspace_url)
    assert response.status == 404
