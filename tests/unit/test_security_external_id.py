"""High finding: the STS external ID could be chosen by the client and was shown
to every Viewer, so a tenant could reuse another's external ID for the same role
(the confused deputy the external ID exists to stop)."""

from __future__ import annotations

import html

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from locations.forms import sign_external_id
from locations.models import BackupLocation
from tests import factories

ROLE = "arn:aws:iam::123456789012:role/backup"


@pytest.fixture
def victim(world):
    """Another workspace's STS location: its external ID is what the attacker wants."""
    theirs = factories.workspace("Theirs")
    return factories.location(theirs, "their-sts", provider="s3", bucket="their-bucket",
                              credential_mode="sts", role_arn=ROLE)  # fmt: skip


def sts_form(world, **extra) -> dict:
    return {"name": "mine", "workspace": world.workspace.pk, "provider": "s3",
            "bucket": "my-bucket", "region": "us-east-1", "endpoint_url": "http://127.0.0.1:9",
            "credential_mode": "sts", "role_arn": ROLE, "action": "save",
            "save_unavailable": "on", **extra}  # fmt: skip


def test_the_form_never_takes_an_external_id_from_the_client(world, login, victim):
    client = login(world.users["admin"])
    # Typed into the field, in the fields request, or signed by someone else's key
    # (a token the console did not make): all ignored.
    forged = sign_external_id(victim.external_id).replace(":", ":x", 1)
    for extra in ({"external_id": victim.external_id}, {"external_id_token": forged}):
        fields = client.get(reverse("location_fields"), {**sts_form(world), **extra})
        assert victim.external_id not in fields.content.decode()
        response = client.post(reverse("location_create"), sts_form(world, **extra))
        assert response.status_code == 302, html.unescape(response.content.decode())[-2000:]
        mine = BackupLocation.objects.get(name="mine")
        assert mine.external_id.startswith("palette-")
        assert mine.external_id != victim.external_id
        mine.delete()


def test_the_shown_external_id_is_the_one_saved(world, login):
    client = login(world.users["admin"])
    page = html.unescape(client.get(reverse("location_fields"), sts_form(world)).content.decode())
    shown = page.split('"sts:ExternalId": "')[1].split('"')[0]
    token = page.split('name="external_id_token" value="')[1].split('"')[0]
    response = client.post(reverse("location_create"), sts_form(world, external_id_token=token))
    assert response.status_code == 302
    assert BackupLocation.objects.get(name="mine").external_id == shown


def test_the_command_ignores_external_id_and_says_so(db, capsys, victim):
    with pytest.raises(Exception, match="Saved as Unavailable"):
        call_command(
            "add_location", "mine", "--provider", "s3", "--bucket", "my-bucket",
            "--region", "us-east-1", "--endpoint", "http://127.0.0.1:9", "--path-style",
            "--access-key", "a", "--secret-key", "b", "--role-arn", ROLE,
            "--external-id", victim.external_id,
        )  # fmt: skip
    err = capsys.readouterr().err
    assert "--external-id is ignored" in err
    mine = BackupLocation.objects.get(name="mine")
    assert mine.external_id != victim.external_id and mine.external_id in err
    assert mine.status == BackupLocation.Status.UNAVAILABLE


def test_the_admin_cannot_set_it(world, client, victim):
    client.force_login(factories.user("root", is_superuser=True, is_staff=True))
    url = reverse("admin:locations_backuplocation_change", args=[victim.pk])
    page = client.get(url).content.decode()
    assert 'name="external_id"' not in page  # read-only there


def test_two_locations_never_share_one(world, victim):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.location(world.workspace, "copy", provider="s3", bucket="b2",
                           external_id=victim.external_id)  # fmt: skip


def test_only_those_who_manage_the_location_see_it(world, login):
    location = factories.location(world.workspace, "sts", provider="s3", bucket="b3",
                                  credential_mode="sts", role_arn=ROLE)  # fmt: skip
    url = reverse("location_detail", args=[location.pk])
    assert location.external_id in login(world.users["admin"]).get(url).content.decode()
    for persona in ("operator", "viewer"):
        page = login(world.users[persona]).get(url).content.decode()
        assert ROLE in page and location.external_id not in page, persona
