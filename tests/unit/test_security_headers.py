"""Browser-side defences: a strict Content-Security-Policy the pages really keep,
no-store downloads (see test_downloads.py), clickjacking and sniffing refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# What the policy forbids: inline scripts, inline event handlers, style attributes.
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=|javascript:", re.I)


def test_the_pages_send_a_strict_policy(world, login):
    response = login(world.users["admin"]).get(reverse("backup_detail", args=[world.backup.pk]))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: p.name)
def test_no_template_needs_inline_script_or_style(template):
    found = INLINE.findall(template.read_text())
    assert not found, f"{template.relative_to(TEMPLATES)}: {found} would be blocked by the CSP"


def test_a_confirmation_is_a_data_attribute_the_static_script_asks(world, login):
    page = login(world.users["admin"]).get(reverse("restore_wizard", args=[world.backup.pk]))
    assert b"data-confirm=" in page.content
    assert b"js/console.js" in page.content


def test_hsts_is_sent_over_https(world, login):
    response = login(world.users["viewer"]).get(reverse("dashboard"), secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_the_session_cookie_is_secure_httponly_and_short(db, client):
    from tests import factories

    factories.user("someone")
    response = client.post(
        reverse("login"), {"username": "someone", "password": factories.PASSWORD}, secure=True
    )
    assert response.status_code == 302
    cookie = response.cookies["sessionid"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 12 * 3600
    assert response.cookies["csrftoken"]["secure"] and response.cookies["csrftoken"]["httponly"]
