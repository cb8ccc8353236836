"""The cluster edit page, per-cluster grants and teams, managed in the console."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backups.models import EtcdPolicy
from tests import factories
from workspaces.access import can, manageable_teams
from workspaces.models import AuditEvent, Cluster
from workspaces.roles import Action, Role


def kubeconfig(token: str) -> SimpleUploadedFile:
    text = factories.UNREACHABLE_KUBECONFIG.format(token=token)
    return SimpleUploadedFile("config", text.encode())


def test_the_form_never_shows_the_stored_secrets(world, login):
    Cluster.objects.filter(pk=world.cluster.pk).update(etcd_key="-----SECRET KEY-----")
    page = login(world.users["admin"]).get(reverse("cluster_edit", args=[world.cluster.name]))
    text = page.content.decode()
    assert "not-a-real-token" not in text and "SECRET KEY" not in text
    assert "https://127.0.0.1:9" in text  # the endpoint is not a secret
    assert "null" not in text


def test_it_replaces_the_kubeconfig_and_audits_field_names_only(world, login):
    url = reverse("cluster_edit", args=[world.cluster.name])
    response = login(world.users["admin"]).post(
        url,
        {"description": "moved", "kubeconfig": kubeconfig("brand-new-token"),
         "etcd_endpoint": world.cluster.etcd_endpoint},
    )  # fmt: skip
    assert response.status_code == 302
    world.cluster.refresh_from_db()
    assert "brand-new-token" in world.cluster.kubeconfig
    assert world.cluster.description == "moved"
    event = AuditEvent.objects.get(action="changed", object_type="cluster")
    assert sorted(event.detail["fields"]) == ["description", "kubeconfig"]
    assert "brand-new-token" not in str(event.detail)
    assert world.cluster.last_checked_at is not None  # checked with the new kubeconfig


def test_an_empty_kubeconfig_keeps_the_stored_one(world, login):
    before = world.cluster.kubeconfig
    login(world.users["admin"]).post(
        reverse("cluster_edit", args=[world.cluster.name]),
        {"description": "x", "etcd_endpoint": world.cluster.etcd_endpoint},
    )
    world.cluster.refresh_from_db()
    assert world.cluster.kubeconfig == before and world.cluster.description == "x"


def test_bad_input_is_refused_and_nothing_is_saved(world, login):
    client = login(world.users["admin"])
    url = reverse("cluster_edit", args=[world.cluster.name])
    bad_pem = client.post(
        url,
        {"description": "half", "etcd_endpoint": "https://127.0.0.1:9", "etcd_ca": "not a pem"},
    )
    assert bad_pem.status_code == 200 and b"field-error" in bad_pem.content
    bad_file = client.post(url, {"kubeconfig": SimpleUploadedFile("c", b"\xff\xfe")})
    assert b"UTF-8" in bad_file.content
    world.cluster.refresh_from_db()
    assert world.cluster.description == "" and world.cluster.etcd_ca == ""


def test_clearing_the_endpoint_removes_the_certificates_and_stops_snapshots(world, login):
    Cluster.objects.filter(pk=world.cluster.pk).update(etcd_key="k", etcd_cert="c")
    login(world.users["admin"]).post(
        reverse("cluster_edit", args=[world.cluster.name]), {"etcd_endpoint": ""}
    )
    world.cluster.refresh_from_db()
    assert (world.cluster.etcd_endpoint, world.cluster.etcd_cert, world.cluster.etcd_key) == (
        "",
        "",
        "",
    )
    assert not EtcdPolicy.objects.get(cluster=world.cluster).enabled


def test_a_cluster_grant_gives_exactly_that_cluster(world, login):
    outsider = world.users["outsider"]
    other = factories.cluster(world.workspace, "other")
    client = login(world.users["admin"])
    client.post(
        reverse("cluster_access", args=[world.cluster.name]),
        {"username": "outsider", "actions": ["backup"]},
    )
    assert can(outsider, Action.VIEW, world.cluster) and can(outsider, Action.BACKUP, world.cluster)
    assert not can(outsider, Action.RESTORE, world.cluster)
    assert not can(outsider, Action.VIEW, other)
    page = client.get(reverse("cluster_access", args=[world.cluster.name])).content.decode()
    assert "outsider" in page and "view, backup" in page
    client.post(
        reverse("cluster_access_revoke", args=[world.cluster.name]),
        {"kind": "user", "id": outsider.pk},
    )
    assert not can(outsider, Action.VIEW, world.cluster)


def test_crafted_revoke_is_a_clean_refusal(world, login):
    client = login(world.users["admin"])
    url = reverse("cluster_access_revoke", args=[world.cluster.name])
    assert client.post(url, {"kind": "wizard", "id": "1"}).status_code == 302
    assert client.post(url, {"kind": "user", "id": "999999"}).status_code == 404


def test_an_admin_manages_only_teams_used_only_in_their_workspaces(world):
    admin = world.users["admin"]
    names = set(manageable_teams(admin).values_list("name", flat=True))
    assert names == {"auditors", "owners"}  # "platform" holds a site-wide permission
    elsewhere = factories.workspace("Elsewhere")
    elsewhere.grant(Role.VIEWER, group=Group.objects.get(name="auditors"))
    assert set(manageable_teams(admin).values_list("name", flat=True)) == {"owners"}


def test_team_members_are_added_and_removed(world, login):
    team = Group.objects.get(name="auditors")
    client = login(world.users["admin"])
    url = reverse("team_detail", args=[team.pk])
    client.post(url, {"username": "outsider"})
    assert team.user_set.filter(username="outsider").exists()
    assert can(world.users["outsider"], Action.VIEW, world.workspace)
    assert b"no active user" in client.post(url, {"username": "ghost"}).content
    client.post(url, {"remove": world.users["outsider"].pk})
    assert not team.user_set.filter(username="outsider").exists()


def test_a_new_team_comes_with_a_role(world, login):
    client = login(world.users["admin"])
    response = client.post(
        reverse("team_list"), {"name": "sre", "workspace": world.workspace.pk, "role": "operator"}
    )
    assert response.status_code == 302
    assert world.workspace.memberships.get(group__name="sre").role == Role.OPERATOR
    other = factories.workspace("Not mine")
    refused = client.post(
        reverse("team_list"), {"name": "sre2", "workspace": other.pk, "role": "admin"}
    )
    assert refused.status_code == 400 and not Group.objects.filter(name="sre2").exists()


def test_the_edit_page_holds_new_addresses_to_the_egress_policy(world, login, settings):
    """A workspace Admin may not point a registered cluster at an internal address."""
    settings.PALETTE_EGRESS_ALLOW = []  # the test environment allows loopback; a server does not
    url = reverse("cluster_edit", args=[world.cluster.name])
    response = login(world.users["admin"]).post(
        url,
        {"description": "pivot", "kubeconfig": kubeconfig("t"),
         "etcd_endpoint": world.cluster.etcd_endpoint},
    )  # fmt: skip
    assert response.status_code == 200 and b"field-error" in response.content
    world.cluster.refresh_from_db()
    assert world.cluster.description == "" and "not-a-real-token" in world.cluster.kubeconfig
