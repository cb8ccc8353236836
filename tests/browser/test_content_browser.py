"""A person pages through a large backup's contents, filters them down to one object and
reads its YAML, in Chromium (no cluster: the backup is written into a directory)."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from django.test import override_settings

from tests import factories
from tests.browser.test_live_pages import shot
from tests.factories import PASSWORD
from tests.unit.test_archive_index import LAYOUT, NAME, write_archive
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1400, 420])
def test_pages_filters_and_one_item(page, log_in, tmp_path, width, settings):
    from locations.providers.filesystem import FilesystemProvider

    settings.PALETTE_FILESYSTEM_ROOTS = [str(tmp_path)]
    with override_settings(PALETTE_FILESYSTEM_ROOTS=[str(tmp_path)]):
        provider = FilesystemProvider(str(tmp_path))
        write_archive(provider, 3000)
        provider.put_bytes(LAYOUT.backup_file(NAME, "results"), gzip.compress(b"{}"))
    sha = hashlib.sha256((tmp_path / LAYOUT.backup_file(NAME, "archive")).read_bytes())
    viewer = factories.user("reader")
    ws = factories.workspace("Demo")
    ws.grant(Role.VIEWER, user=viewer)
    location = factories.location(ws, "disk", path=str(tmp_path), prefix=LAYOUT.prefix)
    backup = factories.backup(factories.cluster(ws, "cluster-a"), location, name=NAME,
                              sha256=sha.hexdigest())  # fmt: skip
    page.set_viewport_size({"width": width, "height": 900})
    page.set_default_timeout(60_000)  # a shared, busy machine: waits, not a time asserted
    log_in("reader", PASSWORD)
    page.goto(backup.get_absolute_url())
    page.wait_for_selector("#contents-range:has-text('Items 1–200 of 3000')")
    page.click("summary code:has-text('v1/ConfigMap')")
    assert page.locator(".browser .item").count() == 200
    page.click("nav.pagination a[rel=next]")
    page.wait_for_selector("#contents-range:has-text('Items 201–400 of 3000')")
    assert "Page 2 of 15" in page.inner_text("nav.pagination")
    shot(page, f"contents-page-2-{width}")

    page.fill("#c-namespace", "ns-7")
    page.fill("#c-name", "cm-192")
    page.click("#contents-filter button[type=submit]")
    page.wait_for_selector("#contents-range:has-text('of 1 matching')")
    page.click("summary code:has-text('v1/ConfigMap')")
    assert page.locator(".browser .item").all_inner_texts() == ["cm-1927"]
    assert page.locator("nav.pagination").count() == 0
    page.click(".browser .item a:has-text('cm-1927')")
    page.wait_for_selector("#item:has-text('name: cm-1927')")
    shot(page, f"contents-filtered-{width}")

    # The filter is in the page's address: a plain link (no script) lands on it too.
    page.goto(backup.get_absolute_url() + "?namespace=ns-7&name=cm-192&page=9")
    page.wait_for_selector("#contents-range:has-text('Items 1–1 of 1 matching')")
    assert page.input_value("#c-name") == "cm-192"
