"""A workspace Admin adds a MinIO location through the pages and sees it Available."""

from __future__ import annotations

import pytest

from locations.models import BackupLocation
from tests import factories
from tests.factories import PASSWORD
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_a_minio_location(page, log_in, devenv, minio_bucket, minio_s3):
    admin = factories.user("lead")
    factories.workspace("Platform").grant(Role.ADMIN, user=admin)
    log_in("lead", PASSWORD)

    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.click("nav >> text=Locations")
    page.click("text=Add location")
    page.fill("input[name=name]", "team-minio")
    # Switching the provider swaps the fields (HTMX), without a page load.
    assert page.locator("input[name=access_key]").count() == 1  # S3 by default
    page.select_option("select[name=provider]", "gcs")
    page.wait_for_selector("textarea[name=service_account_json]")
    assert page.locator("input[name=access_key]").count() == 0
    page.select_option("select[name=provider]", "minio")
    page.wait_for_selector("input[name=access_key]")
    assert page.is_checked("input[name=force_path_style]")

    page.fill("input[name=bucket]", minio_bucket)
    page.fill("input[name=prefix]", "velero")
    page.fill("input[name=endpoint_url]", devenv["MINIO_ENDPOINT"])
    page.fill("input[name=access_key]", devenv["MINIO_ACCESS_KEY"])
    page.fill("input[name=secret_key]", devenv["MINIO_SECRET_KEY"])
    page.click("button:has-text('Validate')")
    page.wait_for_selector("#validation .flash-success")
    assert "Available" in page.inner_text("#validation")
    assert BackupLocation.objects.filter(name="team-minio").count() == 0  # not saved yet
    # Validate left nothing in the bucket.
    assert minio_s3.list_objects_v2(Bucket=minio_bucket).get("KeyCount", 0) == 0

    # The secret is still in the field after the HTMX validation, so Save works.
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('team-minio')")
    assert "Available" in page.inner_text("#status")
    location = BackupLocation.objects.get(name="team-minio")
    assert location.status == BackupLocation.Status.AVAILABLE
    assert devenv["MINIO_SECRET_KEY"] not in page.content()
    # Swapping fields after the secret was typed never puts it in a URL.
    page.goto(f"/locations/{location.pk}/edit/")
    page.fill("input[name=secret_key]", "typed-but-not-sent")
    page.select_option("select[name=provider]", "s3")
    page.wait_for_selector("select[name=credential_mode]")
    assert not [url for url in urls if "secret_key=" in url or "typed-but-not-sent" in url]
