"""The Django admin for support staff."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from backups.models import Backup, Status
from tests import factories
from workspaces.models import AuditEvent, Membership

MODELS = [model for model in admin.site._registry if model._meta.app_label != "auth"]


@pytest.fixture
def staff_client(client, db):
    client.force_login(factories.user("support", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_model_has_a_working_list_and_search(world, staff_client, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(url, {"q": "payments"}).status_code == 200


def test_staff_can_mark_a_stuck_backup_failed(world, staff_client):
    Backup.objects.filter(pk=world.backup.pk).update(status=Status.RUNNING)
    staff_client.post(
        reverse("admin:backups_backup_changelist"),
        {"action": "mark_failed", "_selected_action": [world.backup.pk]},
    )
    world.backup.refresh_from_db()
    assert world.backup.status == Status.FAILED
    assert "support" in world.backup.error
    assert AuditEvent.objects.filter(action="marked failed").exists()


def test_a_membership_added_in_the_admin_grants_its_permissions(world, staff_client):
    outsider = world.users["outsider"]
    response = staff_client.post(
        reverse("admin:workspaces_membership_add"),
        {"workspace": world.workspace.pk, "user": outsider.pk, "role": "operator"},
    )
    assert response.status_code == 302
    assert outsider.has_perm("workspaces.backup_workspace", world.workspace)
    membership = Membership.objects.get(user=outsider)
    staff_client.post(
        reverse("admin:workspaces_membership_delete", args=[membership.pk]), {"post": "yes"}
    )
    assert not Membership.objects.filter(user=outsider).exists()
    fresh = type(outsider).objects.get(pk=outsider.pk)
    assert not fresh.has_perm("workspaces.view_workspace", world.workspace)


def test_non_staff_personas_cannot_enter_the_admin(world, login):
    for persona in ("admin", "operator", "viewer", "outsider"):
        response = login(world.users[persona]).get(reverse("admin:index"))
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def _staff_who_may_change_memberships(*codenames):
    from django.contrib.auth.models import Permission

    staff = factories.user("helpdesk", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return staff


def test_a_staff_account_cannot_make_itself_admin_through_the_admin(world, client):
    staff = _staff_who_may_change_memberships(
        "add_membership", "change_membership", "view_membership", "delete_membership"
    )
    client.force_login(staff)
    response = client.post(
        reverse("admin:workspaces_membership_add"),
        {"workspace": world.workspace.pk, "user": staff.pk, "role": "admin"},
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=staff).exists()
    assert (
        not type(staff)
        .objects.get(pk=staff.pk)
        .has_perm("workspaces.manage_workspace", world.workspace)
    )
    viewer_membership = Membership.objects.filter(workspace=world.workspace).first()
    url = reverse("admin:workspaces_membership_change", args=[viewer_membership.pk])
    assert client.post(url, {"role": "admin"}).status_code == 403
    # Seeing the memberships is still allowed.
    assert client.get(reverse("admin:workspaces_membership_changelist")).status_code == 200


def test_a_staff_account_cannot_join_a_team_or_become_superuser(world, client):
    staff = _staff_who_may_change_memberships("change_user", "view_user", "change_group")
    client.force_login(staff)
    team = world.users["viewer"].groups.get()
    url = reverse("admin:auth_user_change", args=[staff.pk])
    client.post(
        url,
        {"username": "helpdesk", "is_superuser": "on", "is_staff": "on", "is_active": "on",
         "groups": [team.pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"},
    )  # fmt: skip
    staff.refresh_from_db()
    assert not staff.is_superuser
    assert not staff.groups.exists()
    assert client.post(reverse("admin:auth_group_change", args=[team.pk]), {}).status_code == 403


def test_staff_cannot_save_a_bad_etcd_endpoint_or_pem_in_the_admin(world, staff_client):
    url = reverse("admin:workspaces_cluster_change", args=[world.cluster.pk])
    for field, value in (("etcd_endpoint", "ftp://127.0.0.1:19"), ("etcd_ca", "garbage")):
        data = {"workspace": world.workspace.pk, "name": world.cluster.name, "description": "",
                "etcd_endpoint": "https://127.0.0.1:19", "etcd_ca": "", "etcd_cert": "",
                "namespaces": "[]", field: value}  # fmt: skip
        response = staff_client.post(url, data)
        assert response.status_code == 200 and b"errorlist" in response.content, field
    world.cluster.refresh_from_db()
    assert world.cluster.etcd_endpoint == "https://127.0.0.1:9"
    data[field] = ""  # the same change with good values is saved
    assert staff_client.post(url, data).status_code == 302
    world.cluster.refresh_from_db()
    assert world.cluster.etcd_endpoint == "https://127.0.0.1:19"  # nothing listens: saved unread
