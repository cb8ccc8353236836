"""A searched, filtered and sorted list keeps its state in the URL: a reload, or the
link shared with a colleague, shows the same rows in the same order."""

from __future__ import annotations

import pytest

from tests import factories
from tests.factories import PASSWORD
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_filtered_sorted_backup_list_survives_a_reload(page, log_in, tmp_path):
    viewer = factories.user(f"lister-{tmp_path.name[-10:]}")
    ws = factories.workspace()
    ws.grant(Role.VIEWER, user=viewer)
    cluster = factories.cluster(ws)
    location = factories.location(ws, path=str(tmp_path))
    for name, size in (("keep-small", 10), ("keep-large", 5000), ("other-large", 9000)):
        factories.backup(cluster, location, name=name, size_bytes=size)
    factories.backup(cluster, location, name="keep-failed", status="failed", size_bytes=99999)

    log_in(viewer.username, PASSWORD)
    page.goto("/backups/")
    page.fill("#l-q", "keep")
    page.select_option("#l-status", "completed")
    page.select_option("#l-sort", "size")
    page.wait_for_function("() => location.search.includes('sort=size')")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr').length === 2")

    def rows() -> list[str]:
        return page.locator("#list tbody tr td:nth-child(1) a").all_inner_texts()

    assert rows() == ["keep-large", "keep-small"]
    page.reload()
    assert rows() == ["keep-large", "keep-small"]
    assert page.input_value("#l-q") == "keep"
    assert page.input_value("#l-status") == "completed"
    assert page.input_value("#l-sort") == "size"
    # The same URL in a fresh tab (a shared link) shows the same.
    other = page.context.new_page()
    other.goto(page.url)
    assert other.locator("#list tbody tr td:nth-child(1) a").all_inner_texts() == rows()
