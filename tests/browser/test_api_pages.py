"""In Chromium: a person makes an API token on /account/tokens/, sees it once, uses
it, revokes it; the API reference at /api/docs/ renders from the console's own
files under the Content-Security-Policy. Screenshots with PALETTE_SCREENSHOTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def violations(page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda msg: found.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return found


def shot(page, name: str) -> None:
    if folder := os.environ.get("PALETTE_SCREENSHOTS_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_a_token_is_made_shown_once_used_and_revoked(world, page, log_in, violations):
    log_in("operator", PASSWORD)
    page.click("text=API tokens")
    page.wait_for_url("**/account/tokens/")
    page.fill("input[name=name]", "nightly CI")
    page.select_option("select[name=expires_in]", "30d")
    page.click("button:has-text('Make token')")
    secret = page.inner_text("#new-token").strip()
    assert secret.startswith("pbc_")
    shot(page, "api-token-made")
    api = page.context.request
    listed = api.get("/api/v1/backups/", headers={"Authorization": f"Bearer {secret}"})
    assert listed.status == 200 and listed.json()["results"][0]["name"] == world.backup.name
    page.goto("/account/tokens/")
    assert secret not in page.content()  # shown once
    assert "nightly CI" in page.inner_text("table") and "never" not in page.inner_text(
        "td:nth-child(6)"
    )
    for width in (1400, 420):
        page.set_viewport_size({"width": width, "height": 900})
        assert (
            page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            == 0
        )
        shot(page, f"api-tokens-{width}")
    page.click("button:has-text('Revoke')")
    page.wait_for_selector("text=revoked")
    refused = api.get("/api/v1/backups/", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status == 401
    assert violations == []


def test_the_api_reference_renders_under_the_policy(world, page, log_in, violations):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in("viewer", PASSWORD)
    page.goto("/api/docs/")
    page.wait_for_selector("text=/api/v1/backups/")
    page.wait_for_selector(".opblock")
    shot(page, "api-docs")
    assert violations == []
    outside = [url for url in requested if not url.startswith(page.url.split("/api/")[0])]
    assert outside == [], outside  # no CDN: every file from the console itself
