"""Every URL with every persona (tests/conftest.py says who they are): allowed
actions succeed, others are refused, what a persona may not see answers 404 (nothing
leaks), anonymous visitors go to the login page. A URL added to the URLconf without
a row here fails ``test_every_url_has_a_row_for_every_persona``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.urls import URLResolver, get_resolver, resolve, reverse

from tests.conftest import PERSONAS
from workspaces.models import AuditEvent, Cluster, Membership

OK, FOUND, FORBIDDEN, NOT_FOUND, LOGIN = 200, 302, 403, 404, "login"


@dataclass
class Case:
    name: str
    url: Callable
    expect: dict  # persona -> status
    method: str = "get"
    data: Callable = field(default=lambda w: {})
    anonymous: int | str = LOGIN  # what a visitor who is not logged in gets


PEOPLE = tuple(p for p in PERSONAS if p != "anonymous")


def as_finished_preview(w) -> None:
    from backups.models import Restore

    Restore.objects.filter(pk=w.restore.pk).update(is_preview=True, status="completed")


MODIFIER_RULES = """version: v1
resourceModifierRules:
- conditions: {groupResource: persistentvolumeclaims}
  patches: [{operation: replace, path: /spec/storageClassName, value: fast}]
"""


def modifier_set(w):
    from backups.models import ResourceModifierSet

    found, _ = ResourceModifierSet.objects.get_or_create(
        workspace=w.workspace, name="storage", defaults={"rules": MODIFIER_RULES}
    )
    return found


def team_pk(name: str) -> int:
    from django.contrib.auth.models import Group

    return Group.objects.get(name=name).pk


def everyone(status, **others) -> dict:
    return dict.fromkeys(PEOPLE, status) | others


def seers(status, **others) -> dict:
    """Pages of the world's workspace, cluster and their things: whoever sees them."""
    return everyone(status, outsider=NOT_FOUND) | others


def operators(status, **others) -> dict:
    """Backing up, restoring, snapshotting the world's cluster."""
    refused = {"viewer": FORBIDDEN, "outsider": NOT_FOUND}
    return everyone(status) | refused | others


def admin_only(status=OK, **others) -> dict:
    """Managing: the Admin role, directly or through a team."""
    return operators(FORBIDDEN, admin=status, team_admin=status) | others


# The single-cluster grantee does not see the workspace's location (no grant on it).
NO_LOCATION = {"cluster_grantee": NOT_FOUND}

# Archives and etcd snapshots hold every Secret in clear: Viewers may not download,
# nor a single-cluster grantee without a download grant.
DOWNLOADERS = operators(FOUND, cluster_grantee=FORBIDDEN)

CASES = [
    Case("dashboard", lambda w: reverse("dashboard"), everyone(OK)),
    Case(
        "backup_bulk_delete",
        lambda w: reverse("backup_bulk_delete"),
        everyone(OK),  # the confirmation page; each row is checked on it (test_bulk_delete.py)
        method="post",
        data=lambda w: {"ids": [w.backup.pk]},
    ),
    Case("login", lambda w: reverse("login"), everyone(OK), anonymous=OK),
    Case("logout", lambda w: reverse("logout"), everyone(FOUND), method="post"),
    Case("password_change", lambda w: reverse("password_change"), everyone(OK)),
    Case("password_change_done", lambda w: reverse("password_change_done"), everyone(OK)),
    Case("workspace_list", lambda w: reverse("workspace_list"), everyone(OK)),
    Case(
        "workspace_create_form",
        lambda w: reverse("workspace_create"),
        everyone(FORBIDDEN, admin=OK),
    ),
    Case(
        "workspace_create",
        lambda w: reverse("workspace_create"),
        everyone(FORBIDDEN, admin=FOUND),
        method="post",
        data=lambda w: {"name": "Brand new", "description": ""},
    ),
    Case(
        "workspace_detail",
        lambda w: reverse("workspace_detail", args=[w.workspace.slug]),
        seers(OK),
    ),
    Case(
        "workspace_audit",
        lambda w: reverse("workspace_audit", args=[w.workspace.slug]),
        seers(OK),
    ),
    Case(
        "member_grant",
        lambda w: reverse("member_grant", args=[w.workspace.slug]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {"username": "outsider", "role": "viewer"},
    ),
    Case(
        "member_revoke",
        lambda w: reverse(
            "member_revoke",
            args=[w.workspace.slug, w.workspace.memberships.get(user__username="operator").pk],
        ),
        admin_only(FOUND),
        method="post",
    ),
    Case(
        "cluster_register_form",
        lambda w: reverse("cluster_register", args=[w.workspace.slug]),
        admin_only(OK),
    ),
    Case(
        "cluster_detail",
        lambda w: reverse("cluster_detail", args=[w.cluster.name]),
        seers(OK),
    ),
    Case(
        "cluster_health",
        lambda w: reverse("cluster_health", args=[w.cluster.name]),
        seers(FOUND),
        method="post",
    ),
    Case(
        "cluster_edit_form",
        lambda w: reverse("cluster_edit", args=[w.cluster.name]),
        admin_only(OK),
    ),
    Case(
        "cluster_edit",
        lambda w: reverse("cluster_edit", args=[w.cluster.name]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {"description": "changed", "etcd_endpoint": "https://127.0.0.1:9"},
    ),
    Case(
        "cluster_access_form",
        lambda w: reverse("cluster_access", args=[w.cluster.name]),
        admin_only(OK),
    ),
    Case(
        "cluster_access",
        lambda w: reverse("cluster_access", args=[w.cluster.name]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {"username": "outsider", "actions": ["view", "backup"]},
    ),
    Case(
        "cluster_access_revoke",
        lambda w: reverse("cluster_access_revoke", args=[w.cluster.name]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {"kind": "user", "id": w.users["cluster_grantee"].pk},
    ),
    Case("team_list", lambda w: reverse("team_list"), everyone(OK)),
    Case(
        "team_create",  # a new team gets a role in a workspace its creator administers
        lambda w: reverse("team_list"),
        everyone(FORBIDDEN, admin=FOUND, team_admin=FOUND),
        method="post",
        data=lambda w: {"name": "new-team", "workspace": w.workspace.pk, "role": "viewer"},
    ),
    Case(
        "team_detail",
        lambda w: reverse("team_detail", args=[team_pk("auditors")]),
        everyone(NOT_FOUND, admin=OK, team_admin=OK),
    ),
    Case(
        "team_member_add",
        lambda w: reverse("team_detail", args=[team_pk("auditors")]),
        everyone(NOT_FOUND, admin=FOUND, team_admin=FOUND),
        method="post",
        data=lambda w: {"username": "outsider"},
    ),
    Case(
        "cluster_delete_form",
        lambda w: reverse("cluster_delete", args=[w.cluster.name]),
        admin_only(OK),
    ),
    Case(
        "cluster_delete",
        lambda w: reverse("cluster_delete", args=[w.cluster.name]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {"confirm_name": w.cluster.name},
    ),
    Case("location_list", lambda w: reverse("location_list"), everyone(OK)),
    Case(
        "location_detail",
        lambda w: reverse("location_detail", args=[w.location.pk]),
        seers(OK, **NO_LOCATION),
    ),
    Case(
        "location_create_form",
        lambda w: reverse("location_create"),
        everyone(FORBIDDEN, admin=OK, team_admin=OK),
    ),
    Case(
        "location_create",
        lambda w: reverse("location_create"),
        everyone(FORBIDDEN, admin=FOUND, team_admin=FOUND),
        method="post",
        data=lambda w: {
            "name": "new-store",
            "workspace": w.workspace.pk,
            "provider": "minio",  # a local directory is for superusers only
            "bucket": "new-store",
            "endpoint_url": "http://127.0.0.1:9",
            "access_key": "a",
            "secret_key": "b",
            "action": "save",
            "save_unavailable": "on",
        },
    ),
    Case(
        "location_fields",
        lambda w: reverse("location_fields") + "?provider=minio",
        everyone(OK),
    ),
    Case(
        "location_edit_form",
        lambda w: reverse("location_edit", args=[w.location.pk]),
        admin_only(OK, **NO_LOCATION),
    ),
    Case(
        "location_validate",
        lambda w: reverse("location_validate", args=[w.location.pk]),
        operators(FOUND, **NO_LOCATION),
        method="post",
    ),
    Case(
        "location_delete_form",
        lambda w: reverse("location_delete", args=[w.location.pk]),
        admin_only(OK, **NO_LOCATION),
    ),
    Case(
        "location_grant",
        lambda w: reverse("location_grant", args=[w.location.pk]),
        admin_only(FOUND, **NO_LOCATION),
        method="post",
        data=lambda w: {"username": "outsider", "access": "use"},
    ),
    Case(
        "location_revoke",
        lambda w: reverse("location_revoke", args=[w.location.pk]),
        admin_only(FOUND, **NO_LOCATION),
        method="post",
        data=lambda w: {"kind": "user", "grant_id": w.users["outsider"].pk},
    ),
    Case("backup_list", lambda w: reverse("backup_list"), everyone(OK)),
    Case(
        "cluster_backups",
        lambda w: reverse("cluster_backups", args=[w.cluster.name]),
        seers(OK),
    ),
    Case(
        "backup_create_form",
        lambda w: reverse("backup_create", args=[w.cluster.name]),
        operators(OK),
    ),
    Case(
        "backup_status",
        lambda w: reverse("backup_status", args=[w.backup.pk]),
        seers(OK),
    ),
    Case(
        "backup_contents",
        lambda w: reverse("backup_contents", args=[w.backup.pk]),
        seers(OK),
    ),
    Case(
        "backup_item",
        lambda w: reverse("backup_item", args=[w.backup.pk]) + "?type=v1/ConfigMap&name=x",
        seers(OK),
    ),
    Case(
        "backup_download",
        lambda w: reverse("backup_download", args=[w.backup.pk]),
        # Operators and Admins may download (the archive is not in storage: back to
        # the page); a Viewer sees the backup but may not download it.
        DOWNLOADERS,
    ),
    Case(
        "backup_delete_form",
        lambda w: reverse("backup_delete", args=[w.backup.pk]),
        admin_only(OK),
    ),
    Case(
        "restore_wizard_form",
        lambda w: reverse("restore_wizard", args=[w.backup.pk]),
        operators(OK),
    ),
    Case(
        "restore_confirm",
        lambda w: as_finished_preview(w) or reverse("restore_confirm", args=[w.restore.pk]),
        operators(FOUND),
        method="post",
    ),
    Case(
        "restore_rerun",
        lambda w: as_finished_preview(w) or reverse("restore_rerun", args=[w.restore.pk]),
        operators(FOUND),
        method="post",
    ),
    Case(
        "restore_status",
        lambda w: reverse("restore_status", args=[w.restore.pk]),
        seers(OK),
    ),
    Case(
        "cluster_restores",
        lambda w: reverse("cluster_restores", args=[w.cluster.name]),
        seers(OK),
    ),
    Case(
        "cluster_etcd",
        lambda w: reverse("cluster_etcd", args=[w.cluster.name]),
        seers(OK),
    ),
    Case(
        "etcd_policy_edit",
        lambda w: reverse("etcd_policy_edit", args=[w.cluster.name]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {"enabled": "on", "cron": "0 */2 * * *", "keep": "6"},
    ),
    Case(
        "etcd_snapshot_create",
        lambda w: reverse("etcd_snapshot_create", args=[w.cluster.name]),
        operators(FOUND),
        method="post",
    ),
    Case(
        "etcd_snapshot_status",
        lambda w: reverse("etcd_snapshot_status", args=[w.snapshot.pk]),
        seers(OK),
    ),
    Case(
        "etcd_snapshot_download",
        lambda w: reverse("etcd_snapshot_download", args=[w.snapshot.pk]),
        DOWNLOADERS,  # nothing stored: back to the page with the reason
    ),
    Case(
        "etcd_snapshot_delete_form",
        lambda w: reverse("etcd_snapshot_delete", args=[w.snapshot.pk]),
        admin_only(OK),
    ),
    Case(
        "etcd_restore_create",
        lambda w: reverse("etcd_restore_create", args=[w.snapshot.pk]),
        admin_only(FORBIDDEN),  # superusers only (test_etcd_local_targets.py)
        method="post",
        data=lambda w: {"confirm_name": w.cluster.name},
    ),
    Case(
        "etcd_restore_detail",
        lambda w: reverse("etcd_restore_detail", args=[w.etcd_restore.pk]),
        seers(OK),
    ),
    Case(
        "cluster_schedules",
        lambda w: reverse("cluster_schedules", args=[w.cluster.name]),
        seers(OK),
    ),
    Case(
        "schedule_create_cluster_form",
        lambda w: reverse("schedule_create_cluster", args=[w.cluster.name]),
        admin_only(OK),
    ),
    Case(
        "schedule_create_cluster",
        lambda w: reverse("schedule_create_cluster", args=[w.cluster.name]),
        admin_only(FOUND),
        method="post",
        data=lambda w: {
            "prefix": "daily",
            "preset": "custom",
            "cron": "0 2 * * *",
            "location": w.location.pk,
            "ttl": "168h",
            "cluster_resources": "auto",
        },
    ),
    Case(
        "schedule_create_workspace_form",
        lambda w: reverse("schedule_create_workspace", args=[w.workspace.slug]),
        admin_only(OK),
    ),
    Case(
        "workspace_backup_form",
        lambda w: reverse("workspace_backup", args=[w.workspace.slug]),
        # Backing up a whole workspace needs a role in it, not a grant on one cluster.
        operators(OK, cluster_grantee=FORBIDDEN),
    ),
    Case("schedule_calendar", lambda w: reverse("schedule_calendar"), everyone(OK)),
    Case("schedule_list", lambda w: reverse("schedule_list"), everyone(OK)),
    Case(
        "schedule_run",  # backs up the schedule's cluster now: whoever may back it up
        lambda w: reverse("schedule_run", args=[w.schedule.pk]),
        operators(FOUND),
        method="post",
    ),
    Case(
        "schedule_preview",
        lambda w: reverse("schedule_preview") + "?preset=custom&cron=*/5+*+*+*+*",
        everyone(OK),
    ),
    Case(
        "schedule_detail",
        lambda w: reverse("schedule_detail", args=[w.schedule.pk]),
        seers(OK),
    ),
    Case(
        "schedule_edit_form",
        lambda w: reverse("schedule_edit", args=[w.schedule.pk]),
        admin_only(OK),
    ),
    Case(
        "schedule_pause",
        lambda w: reverse("schedule_pause", args=[w.schedule.pk]),
        admin_only(FOUND),
        method="post",
    ),
    Case(
        "schedule_delete_form",
        lambda w: reverse("schedule_delete", args=[w.schedule.pk]),
        admin_only(OK),
    ),
    Case(
        "backup_run_restore",
        lambda w: reverse("backup_run_restore", args=[w.run.pk]),
        operators(FOUND, cluster_grantee=FORBIDDEN),  # restores the whole workspace
        method="post",
        data=lambda w: {"include_namespaces": "shop", "existing_policy": "none"},
    ),
    Case(
        "backup_run_detail",
        lambda w: reverse("backup_run_detail", args=[w.run.pk]),
        seers(OK),
    ),
    Case(
        "backup_detail",
        lambda w: reverse("backup_detail", args=[w.backup.pk]),
        seers(OK),
    ),
    Case("restore_list", lambda w: reverse("restore_list"), everyone(OK)),
    Case(
        "restore_detail",
        lambda w: reverse("restore_detail", args=[w.restore.pk]),
        seers(OK),
    ),
    Case("etcd_snapshot_list", lambda w: reverse("etcd_snapshot_list"), everyone(OK)),
    Case(
        "etcd_snapshot_detail",
        lambda w: reverse("etcd_snapshot_detail", args=[w.snapshot.pk]),
        seers(OK),
    ),
    Case(
        "job_cancel_restore",  # pending: whoever may restore into the target cancels it
        lambda w: reverse("job_cancel", args=["restore", w.restore.pk]),
        operators(FOUND),
        method="post",
    ),
    Case(
        "job_cancel_etcd_snapshot",
        lambda w: reverse("job_cancel", args=["etcd_snapshot", w.snapshot.pk]),
        operators(FOUND),
        method="post",
    ),
    Case(
        "job_cancel_etcd_restore",
        lambda w: reverse("job_cancel", args=["etcd_restore", w.etcd_restore.pk]),
        admin_only(FOUND),
        method="post",
    ),
    # resource modifier sets (#20): a workspace role sees them, one that restores changes them
    Case(
        "modifier_set_list",
        lambda w: reverse("modifier_set_list", args=[w.workspace.slug]),
        seers(OK),
    ),
    Case(
        "modifier_set_create_form",
        lambda w: reverse("modifier_set_create", args=[w.workspace.slug]),
        operators(OK, cluster_grantee=FORBIDDEN),
    ),
    Case(
        "modifier_set_create",
        lambda w: reverse("modifier_set_create", args=[w.workspace.slug]),
        operators(FOUND, cluster_grantee=FORBIDDEN),
        method="post",
        data=lambda w: {"name": "fresh", "rules": MODIFIER_RULES},
    ),
    Case(
        "modifier_set_detail",
        lambda w: reverse("modifier_set_detail", args=[modifier_set(w).pk]),
        seers(OK, cluster_grantee=NOT_FOUND),
    ),
    Case(
        "modifier_set_edit",
        lambda w: reverse("modifier_set_detail", args=[modifier_set(w).pk]),
        operators(FOUND, cluster_grantee=NOT_FOUND),
        method="post",
        data=lambda w: {"name": "storage", "rules": MODIFIER_RULES},
    ),
    Case(
        "modifier_set_delete_form",
        lambda w: reverse("modifier_set_delete", args=[modifier_set(w).pk]),
        operators(OK, cluster_grantee=NOT_FOUND),
    ),
    Case(
        "modifier_set_delete",
        lambda w: reverse("modifier_set_delete", args=[modifier_set(w).pk]),
        operators(FOUND, cluster_grantee=NOT_FOUND),
        method="post",
    ),
    Case(
        "backup_copy",  # no usable second location here: refused with a message
        lambda w: reverse("backup_copy", args=[w.backup.pk]),
        operators(FOUND),
        method="post",
        data=lambda w: {"location": "0"},
    ),
    # API tokens are personal: everyone manages their own (test_api_tokens.py checks
    # that nobody reaches anyone else's).
    Case("token_list", lambda w: reverse("token_list"), everyone(OK)),
    Case(
        "token_create",
        lambda w: reverse("token_create"),
        everyone(OK),  # the page that shows the new token once
        method="post",
        data=lambda w: {"name": "ci", "expires_in": "30d"},
    ),
    Case(
        "token_revoke",
        lambda w: reverse("token_revoke", args=[admins_token(w)]),
        everyone(NOT_FOUND, admin=FOUND),  # someone else's token is not found
        method="post",
    ),
]


def admins_token(w) -> int:
    """A token of the admin persona: only the admin may revoke it."""
    from api.models import ApiToken

    return ApiToken.issue(w.users["admin"], "ci")[0].pk


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_it_answers_each_persona_as_its_role_allows(world, login, case, persona):
    client = login(world.users[persona])
    url = case.url(world)
    response = getattr(client, case.method)(url, case.data(world))
    if persona == "anonymous" and case.anonymous == LOGIN:
        assert response.status_code == FOUND
        assert response["Location"].startswith(reverse("login"))
        return
    expected = case.anonymous if persona == "anonymous" else case.expect[persona]
    assert response.status_code == expected, response.content[:500]


def notification_rule(w):
    from notifications.models import Rule

    rule, _ = Rule.objects.get_or_create(
        workspace=w.workspace, name="on-call", defaults={"channel": "email",
        "recipients": "ops@example.org", "events": ["backup.failed"]},
    )  # fmt: skip
    return rule


# Integrations: notifications are the workspace Admin's; /metrics and SSO are off
# unless configured (404 for everyone; test_metrics.py and test_sso.py turn them on).
CASES += [
    Case("notification_rules", lambda w: reverse("notification_rules", args=[w.workspace.slug]),
         admin_only()),
    Case("notification_rules_create",
         lambda w: reverse("notification_rules", args=[w.workspace.slug]), admin_only(201),
         method="post", data=lambda w: {"name": "new", "channel": "email", "events": ["backup.failed"], "recipients": "a@example.org"}),
    Case("notification_rule_test", lambda w: reverse("notification_rule_test", args=[
         w.workspace.slug, notification_rule(w).pk]), admin_only(FOUND), method="post"),
    Case("notification_rule_delete", lambda w: reverse("notification_rule_delete", args=[
         w.workspace.slug, notification_rule(w).pk]), admin_only(FOUND), method="post"),
    Case("metrics", lambda w: reverse("metrics"), everyone(NOT_FOUND), anonymous=NOT_FOUND),
    Case("oidc_authentication_init", lambda w: reverse("oidc_authentication_init"),
         everyone(NOT_FOUND), anonymous=NOT_FOUND),
    Case("oidc_authentication_callback", lambda w: reverse("oidc_authentication_callback"),
         everyone(NOT_FOUND), anonymous=NOT_FOUND),
]  # fmt: skip


def url_names(patterns) -> set[str]:
    """Every URL of the URLconf by name (a pattern without a name by its route), less
    those covered elsewhere."""
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            # Django's admin (test_admin.py) and the REST API (test_api_personas.py).
            if pattern.namespace not in ("admin", "api"):
                names |= url_names(pattern.url_patterns)
        else:
            names.add(pattern.name or str(pattern.pattern))
    return names


def test_every_url_has_a_row_for_every_persona(world):
    covered = {resolve(urlsplit(case.url(world)).path).url_name for case in CASES}
    assert url_names(get_resolver().url_patterns) - covered == set()
    for case in CASES:
        assert set(case.expect) == set(PERSONAS) - {"anonymous"}, case.name


def test_it_grants_a_role_for_an_admin(world, login):
    login(world.users["admin"]).post(
        reverse("member_grant", args=[world.workspace.slug]),
        {"username": "outsider", "role": "operator"},
    )
    membership = Membership.objects.get(workspace=world.workspace, user__username="outsider")
    assert membership.role == "operator"
    assert world.users["outsider"].has_perm("backup_workspace", world.workspace)
    assert AuditEvent.objects.filter(action="granted", workspace=world.workspace).exists()


def test_it_revokes_a_role_and_its_permissions(world, login):
    operator = world.users["operator"]
    membership = world.workspace.memberships.get(user=operator)
    login(world.users["admin"]).post(
        reverse("member_revoke", args=[world.workspace.slug, membership.pk])
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()
    client = login(operator)
    assert client.get(reverse("workspace_detail", args=[world.workspace.slug])).status_code == 404


def test_it_keeps_the_last_admin(world, login):
    admin = world.users["admin"]
    # The team_admin persona's team is an Admin too: without it, admin is the last.
    world.workspace.revoke(world.workspace.memberships.get(group__name="owners"))
    membership = world.workspace.memberships.get(user=admin)
    login(admin).post(reverse("member_revoke", args=[world.workspace.slug, membership.pk]))
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_it_deletes_a_cluster_only_when_its_name_is_typed(world, login):
    client = login(world.users["admin"])
    url = reverse("cluster_delete", args=[world.cluster.name])
    client.post(url, {"confirm_name": "wrong"})
    assert Cluster.objects.filter(pk=world.cluster.pk).exists()
    client.post(url, {"confirm_name": world.cluster.name})
    assert not Cluster.objects.filter(pk=world.cluster.pk).exists()
    world.backup.refresh_from_db()
    assert world.backup.cluster is None and world.backup.cluster_name == "payments-prod"


def test_it_shows_lists_only_what_the_persona_may_see(world, login):
    for url in (reverse("backup_list"), reverse("location_list"), reverse("workspace_list")):
        assert world.workspace.name.encode() not in login(world.users["outsider"]).get(url).content
    viewer_page = login(world.users["viewer"]).get(reverse("backup_list")).content
    assert world.backup.name.encode() in viewer_page
    assert (
        world.backup.name.encode()
        not in login(world.users["outsider"]).get(reverse("backup_list")).content
    )


def test_it_reports_why_a_cluster_is_unreachable(world, login):
    response = login(world.users["viewer"]).post(
        reverse("cluster_health", args=[world.cluster.name]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b"connection refused" in response.content
    world.cluster.refresh_from_db()
    assert world.cluster.health == Cluster.Health.UNREACHABLE


def test_an_audit_detail_key_named_items_renders(world, login):
    from workspaces import audit

    audit.record(world.users["admin"], "backed up", world.backup, items=58, result="Completed")
    page = login(world.users["admin"]).get(reverse("dashboard")).content.decode()
    assert "items: 58" in page
