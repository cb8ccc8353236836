"""Every page of the persona matrix, in Chromium at 1400 and 420 px: no page breaks the
Content-Security-Policy, at 420 px no page scrolls sideways (tables scroll inside their own box), the menu collapses behind its
button, and the dashboard's recovery-point table and charts show real rows.

With PALETTE_SCREENSHOTS_DIR set (``make screenshots``), it also writes a PNG of each
page at each width there, so anyone can look at them."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from backups.models import Schedule, Status
from tests import factories
from tests.factories import PASSWORD
from tests.unit.test_views_personas import CASES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1400, 420)
# Partials that HTMX swaps into a page, not pages of their own.
FRAGMENTS = {
    "location_fields",
    "backup_status",
    "backup_contents",
    "backup_item",
    "restore_status",
    "etcd_snapshot_status",
    "schedule_preview",
}
PAGES = [
    c for c in CASES if c.method == "get" and c.expect["admin"] == 200 and c.name not in FRAGMENTS
]


def history(world) -> None:
    """A month of the cluster's backups (sizes and durations that vary, one failure),
    a second cluster no schedule covers, and a daily schedule with a next run."""
    now = timezone.now()
    for day in range(12):
        end = now - timedelta(days=day, hours=2)
        factories.backup(
            world.cluster,
            world.location,
            size_bytes=(40 + day * 7 % 23) * 1024 * 1024,
            started_at=end - timedelta(seconds=50 + day * 13 % 70),
            finished_at=end,
        )
    factories.backup(
        world.cluster,
        world.location,
        status=Status.FAILED,
        error="the store answered 503 Slow Down",
        started_at=now - timedelta(hours=5),
        finished_at=now - timedelta(hours=5),
    )
    factories.snapshot(
        world.cluster,
        world.location,
        status=Status.COMPLETED,
        size_bytes=3 * 1024 * 1024,
        started_at=now - timedelta(minutes=21),
        finished_at=now - timedelta(minutes=20),
    )
    factories.cluster(world.workspace, "payments-staging", namespaces=["default", "shop"])
    Schedule.objects.filter(pk=world.schedule.pk).update(
        preset=Schedule.Preset.CUSTOM, cron="0 2 * * *", next_run_at=now + timedelta(hours=6)
    )


def overflow(page) -> int:
    """How many pixels the page is wider than its viewport (0: no sideways scrolling)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def screenshots_folder() -> Path | None:
    """PALETTE_SCREENSHOTS_DIR, made if missing; None when screenshots are not wanted."""
    shots = os.environ.get("PALETTE_SCREENSHOTS_DIR")
    folder = Path(shots) if shots else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def csp_violations(page) -> list[str]:
    """The Content-Security-Policy violations the page reports from now on."""
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return violations


def test_every_page_fits_at_420_px(world, page, log_in):
    history(world)
    folder = screenshots_folder()
    violations = csp_violations(page)
    log_in("admin", PASSWORD)
    too_wide = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for case in PAGES:
            response = page.goto(case.url(world))
            assert response.status == 200, case.name
            if width == 420 and (extra := overflow(page)):
                too_wide[case.name] = extra
            if folder:
                page.screenshot(path=str(folder / f"{case.name}-{width}.png"), full_page=True)
    assert too_wide == {}, f"pages wider than 420 px (by px): {too_wide}"
    assert violations == []  # every page, charts included, keeps the CSP


def test_the_menu_collapses_below_1000_px(world, page, log_in):
    log_in("admin", PASSWORD)
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto("/")
    assert not page.is_visible("nav.mainnav")
    page.click(".menu-toggle")
    page.wait_for_selector("nav.mainnav", state="visible")
    page.click("nav.mainnav >> text=Schedules")
    page.wait_for_url("**/schedules/")
    page.set_viewport_size({"width": 1400, "height": 800})
    assert page.is_visible("nav.mainnav") and not page.is_visible(".menu-toggle")


def test_the_dashboard_shows_recovery_points_and_charts(world, page, log_in):
    history(world)
    log_in("viewer", PASSWORD)
    page.goto("/")
    row = page.locator("#recovery-points tr[data-cluster='payments-prod']")
    assert row.locator(".badge").inner_text() == "Protected"
    assert "2 h" in row.locator("td.rp-backup").inner_text()  # the newest is 2 h old
    assert "UTC" in row.locator("td.rp-backup").inner_text()
    staging = page.locator("#recovery-points tr[data-cluster='payments-staging']")
    assert staging.locator(".badge").inner_text() == "Not scheduled"
    assert "payments-staging" in page.inner_text("#coverage")
    assert page.locator("#charts svg.chart").count() == 2
    # Each chart plots the 12 completed backups, one dot each, with a readable tooltip.
    assert page.locator("#charts svg.chart").first.locator("circle").count() == 12
    assert (
        "MiB"
        in page.locator("#charts svg.chart").first.locator("circle title").first.text_content()
    )
    assert "503 Slow Down" in page.inner_text("#failures")
    assert page.inner_text("#rate-week") == "88%"  # 7 of 8: days 7 to 11 are older
