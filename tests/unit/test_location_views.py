"""Adding, validating and editing locations through the pages."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from locations.models import BackupLocation
from tests import factories
from workspaces.access import can
from workspaces.roles import Action


@pytest.fixture
def admin_client(world, client):
    client.force_login(world.users["admin"])
    return client


@pytest.fixture
def root_client(world, client):
    """A superuser: the only one who may place a location on the server's disk."""
    client.force_login(factories.user("root", is_superuser=True, is_staff=True))
    return client


def fields_of(client, **params) -> str:
    return html.unescape(client.get(reverse("location_fields"), params).content.decode())


def test_the_fields_follow_the_provider(admin_client, root_client):
    minio = fields_of(admin_client, provider="minio")
    assert 'name="access_key"' in minio and 'name="force_path_style"' in minio
    assert 'name="service_account_json"' not in minio
    gcs = fields_of(admin_client, provider="gcs")
    assert 'name="service_account_json"' in gcs and 'name="access_key"' not in gcs
    local = fields_of(root_client, provider="filesystem")
    assert 'name="path"' in local and 'name="bucket"' not in local
    azure = fields_of(admin_client, provider="azure", azure_auth="service_principal")
    assert 'name="tenant_id"' in azure and 'name="client_secret"' in azure


def test_sts_shows_the_external_id_trust_policy_and_permissions(admin_client):
    page = fields_of(admin_client, provider="s3", credential_mode="sts", bucket="team-backups")
    assert 'name="role_arn"' in page
    assert '"sts:ExternalId": "palette-' in page
    assert "s3:AbortMultipartUpload" in page and "arn:aws:s3:::team-backups/*" in page
    # The id stays the same when the fields are swapped again (it travels signed).
    external_id = page.split('"sts:ExternalId": "')[1].split('"')[0]
    token = page.split('name="external_id_token" value="')[1].split('"')[0]
    again = fields_of(admin_client, provider="s3", credential_mode="sts", external_id_token=token)
    assert f'"sts:ExternalId": "{external_id}"' in again


def test_validate_checks_without_saving(world, root_client, tmp_path):
    response = root_client.post(
        reverse("location_create"),
        {"name": "disk", "workspace": world.workspace.pk, "provider": "filesystem",
         "path": str(tmp_path), "action": "validate"},
        HTTP_HX_REQUEST="true",
    )  # fmt: skip
    assert response.status_code == 200
    assert "Available" in response.content.decode()
    assert not BackupLocation.objects.filter(name="disk").exists()
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "metadata"])


def test_a_working_location_is_saved_available(world, root_client, tmp_path):
    response = root_client.post(
        reverse("location_create"),
        {"name": "disk", "workspace": world.workspace.pk, "provider": "filesystem",
         "path": str(tmp_path), "is_default": "on", "action": "save"},
    )  # fmt: skip
    assert response.status_code == 302
    location = BackupLocation.objects.get(name="disk")
    assert location.status == BackupLocation.Status.AVAILABLE
    assert location.last_validated_at is not None
    assert location.is_default


def test_a_failing_location_is_saved_only_when_asked(world, root_client, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    data = {"name": "broken", "workspace": world.workspace.pk, "provider": "filesystem",
            "path": str(blocker), "action": "save"}  # fmt: skip
    response = root_client.post(reverse("location_create"), data)
    assert response.status_code == 200
    assert "Not saved" in response.content.decode()
    assert 'name="save_unavailable"' in response.content.decode()
    assert not BackupLocation.objects.filter(name="broken").exists()
    root_client.post(reverse("location_create"), {**data, "save_unavailable": "on"})
    location = BackupLocation.objects.get(name="broken")
    assert location.status == BackupLocation.Status.UNAVAILABLE
    assert location.status_message


def test_editing_with_a_blank_secret_keeps_the_stored_one(world, admin_client):
    location = factories.location(
        world.workspace, "s3-store", provider="s3", bucket="bkt",
        endpoint_url="http://127.0.0.1:9", force_path_style=True,
        credentials={"access_key": "AKIAOLD", "secret_key": "kept-secret"},
    )  # fmt: skip
    page = admin_client.get(reverse("location_edit", args=[location.pk])).content.decode()
    assert "kept-secret" not in page and "AKIAOLD" in page
    admin_client.post(
        reverse("location_edit", args=[location.pk]),
        {"name": "s3-store", "workspace": world.workspace.pk, "provider": "s3",
         "bucket": "bkt", "endpoint_url": "http://127.0.0.1:9", "force_path_style": "on",
         "credential_mode": "static", "access_key": "AKIANEW", "secret_key": "",
         "action": "save", "save_unavailable": "on"},
    )  # fmt: skip
    location.refresh_from_db()
    assert location.credentials == {"access_key": "AKIANEW", "secret_key": "kept-secret"}
    assert location.status == BackupLocation.Status.UNAVAILABLE
    assert "127.0.0.1:9" in location.status_message


def test_one_default_per_workspace(world, root_client, tmp_path):
    BackupLocation.objects.filter(pk=world.location.pk).update(is_default=True)
    root_client.post(
        reverse("location_create"),
        {"name": "disk", "workspace": world.workspace.pk, "provider": "filesystem",
         "path": str(tmp_path), "is_default": "on", "action": "save"},
    )  # fmt: skip
    world.location.refresh_from_db()
    assert not world.location.is_default
    assert BackupLocation.objects.get(name="disk").is_default


def test_location_grants_give_and_take_access(world, admin_client):
    outsider = world.users["outsider"]
    assert not can(outsider, Action.VIEW, world.location)
    admin_client.post(
        reverse("location_grant", args=[world.location.pk]),
        {"username": "outsider", "access": "use"},
    )
    assert can(outsider, Action.BACKUP, world.location)
    assert can(outsider, Action.VIEW, world.location)
    assert not can(outsider, Action.MANAGE, world.location)
    page = admin_client.get(reverse("location_detail", args=[world.location.pk])).content.decode()
    assert "outsider" in page
    admin_client.post(
        reverse("location_revoke", args=[world.location.pk]),
        {"kind": "user", "grant_id": outsider.pk},
    )
    assert not can(outsider, Action.VIEW, world.location)


def test_a_location_with_backups_cannot_be_deleted(world, admin_client):
    url = reverse("location_delete", args=[world.location.pk])
    admin_client.post(url, {"confirm_name": world.location.name})
    assert BackupLocation.objects.filter(pk=world.location.pk).exists()
    empty = factories.location(world.workspace, "empty")
    admin_client.post(reverse("location_delete", args=[empty.pk]), {"confirm_name": "empty"})
    assert not BackupLocation.objects.filter(pk=empty.pk).exists()
