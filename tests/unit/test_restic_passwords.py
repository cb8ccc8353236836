"""The restic passwords of a location: one wrapped secret per location, a password per
namespace, unchanged by a key rotation or by encryption turned on."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from backups.engine_inputs import store
from locations.restic_passwords import ResticSecret, passwords
from tests import factories


@pytest.fixture
def location(db, tmp_path):
    return factories.location(factories.workspace("Restic"), "disk", path=str(tmp_path))


def test_it_derives_one_password_per_namespace_from_a_wrapped_secret(location):
    first = passwords(location)
    a, b = first("shop"), first("billing")
    assert a != b and len(a) == 64
    row = ResticSecret.objects.get(location=location)
    assert a not in row.wrapped and b not in row.wrapped
    assert passwords(location)("shop") == a, "the same secret on the next job"
    assert ResticSecret.objects.count() == 1


def test_rotation_and_encryption_leave_the_passwords_alone(location):
    before = passwords(location)("shop")
    location.encrypt = True
    location.save()
    call_command("rotate_location_key", location.name, stdout=io.StringIO())
    call_command("rotate_location_key", location.name, stdout=io.StringIO())
    assert passwords(location)("shop") == before


def test_another_location_has_other_passwords(location, tmp_path):
    other_dir = tmp_path.parent / (tmp_path.name + "-other")
    other_dir.mkdir()
    other = factories.location(location.workspace, "other", path=str(other_dir))
    assert passwords(other)("shop") != passwords(location)("shop")


def test_the_engine_store_gets_them(location):
    given = store(location)
    try:
        assert given.restic_password("shop") == passwords(location)("shop")
        assert given.layout.restic_root == "volumes-restic"
    finally:
        given.provider.close()
