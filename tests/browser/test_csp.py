"""Every kind of page works under the Content-Security-Policy: Chromium reports no
violation (no inline script, handler or style is needed), and htmx still swaps."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_pages_keep_the_policy(world, page, log_in):
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    log_in("admin", PASSWORD)
    urls = [
        reverse("dashboard"),
        reverse("workspace_detail", args=[world.workspace.slug]),
        reverse("cluster_detail", args=[world.cluster.name]),
        reverse("cluster_backups", args=[world.cluster.name]),
        reverse("backup_detail", args=[world.backup.pk]),
        reverse("restore_wizard", args=[world.backup.pk]),
        reverse("restore_detail", args=[world.restore.pk]),
        reverse("schedule_calendar"),
        reverse("schedule_create_cluster", args=[world.cluster.name]),
        reverse("location_list"),
        reverse("location_detail", args=[world.location.pk]),
        reverse("location_create"),
        reverse("cluster_etcd", args=[world.cluster.name]),
        reverse("etcd_snapshot_detail", args=[world.snapshot.pk]),
    ]
    for url in urls:
        page.goto(url)
        page.wait_for_load_state("networkidle")
    assert violations == []
    # htmx runs under the policy: the cron preview is swapped in as one types.
    page.goto(reverse("schedule_create_cluster", args=[world.cluster.name]))
    page.select_option("select[name=preset]", "custom")
    page.fill("input[name=cron]", "0 0 31 2 *")
    page.wait_for_selector("#cron-preview:has-text('never runs')")
    assert violations == []
