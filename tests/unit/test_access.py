"""The permission rules of access.py, one sentence each."""

from __future__ import annotations

from guardian.shortcuts import assign_perm

from backups.models import Backup, Restore
from locations.models import BackupLocation
from tests import factories
from workspaces.access import (
    can,
    clusters_for,
    locations_q,
    operation_q,
    workspaces_for,
)
from workspaces.models import Cluster
from workspaces.roles import Action, Role


def test_roles_are_bundles_of_actions(world):
    ws, users = world.workspace, world.users
    expected = {
        "admin": set(Action),
        "operator": {
            Action.VIEW,
            Action.BACKUP,
            Action.RESTORE,
            Action.SNAPSHOT,
            Action.DOWNLOAD,
        },
        "viewer": {Action.VIEW},
        "outsider": set(),
    }
    for persona, actions in expected.items():
        allowed = {a for a in Action if can(users[persona], a, ws)}
        assert allowed == actions, persona
        assert {a for a in Action if can(users[persona], a, world.cluster)} == actions


def test_changing_a_role_replaces_its_permissions(world):
    operator = world.users["operator"]
    world.workspace.grant(Role.VIEWER, user=operator)
    assert can(operator, Action.VIEW, world.workspace)
    assert not can(operator, Action.BACKUP, world.workspace)


def test_a_cluster_grant_adds_to_a_role_for_one_cluster(world):
    viewer = world.users["viewer"]
    other = factories.cluster(world.workspace, "payments-staging")
    assign_perm("restore_cluster", viewer, other)
    assert can(viewer, Action.RESTORE, other)
    assert not can(viewer, Action.RESTORE, world.cluster)
    assert set(clusters_for(viewer, Action.RESTORE)) == {other}


def test_a_cluster_grant_alone_shows_that_cluster_and_its_workspace_only(db):
    user = factories.user()
    ws = factories.workspace()
    seen, hidden = factories.cluster(ws), factories.cluster(ws)
    assign_perm("view_cluster", user, seen)
    assert list(workspaces_for(user)) == [ws]
    assert list(clusters_for(user)) == [seen]
    assert not can(user, Action.VIEW, ws)
    assert hidden not in clusters_for(user)


def test_teams_grant_roles_to_their_members(world):
    newcomer = factories.user()
    team = factories.team("sre", newcomer)
    world.workspace.grant(Role.OPERATOR, group=team)
    assert can(newcomer, Action.BACKUP, world.cluster)
    newcomer.groups.remove(team)
    assert not can(newcomer, Action.VIEW, world.cluster)


def test_backups_and_restores_follow_their_cluster_and_outlive_it(world):
    viewer = world.users["viewer"]
    assert list(Backup.objects.filter(operation_q(viewer))) == [world.backup]
    restores = Restore.objects.filter(operation_q(viewer, cluster_field="target_cluster"))
    assert list(restores) == [world.restore]
    world.cluster.delete()
    assert list(Backup.objects.filter(operation_q(viewer))) == [world.backup]
    assert not Backup.objects.filter(operation_q(world.users["outsider"])).exists()


def test_restoring_into_a_cluster_needs_restore_on_that_cluster(world):
    other_ws = factories.workspace("Elsewhere")
    target = factories.cluster(other_ws, "elsewhere")
    operator = world.users["operator"]
    assert can(operator, Action.RESTORE, world.cluster)
    assert not can(operator, Action.RESTORE, target)
    other_ws.grant(Role.VIEWER, user=operator)
    assert not can(operator, Action.RESTORE, target)
    assign_perm("restore_cluster", operator, target)
    assert can(operator, Action.RESTORE, target)


def test_locations_follow_their_workspace_or_their_own_grants(world):
    loc, users = world.location, world.users
    shared = factories.location(None, "shared")
    assert can(users["viewer"], Action.VIEW, loc)
    assert not can(users["viewer"], Action.BACKUP, loc)
    assert can(users["operator"], Action.BACKUP, loc)
    assert not can(users["operator"], Action.MANAGE, loc)
    assert can(users["admin"], Action.MANAGE, loc)
    assert not BackupLocation.objects.filter(locations_q(users["outsider"])).exists()
    assign_perm("use_backuplocation", users["outsider"], shared)
    assert can(users["outsider"], Action.BACKUP, shared)
    assert not can(users["outsider"], Action.MANAGE, shared)


def test_superusers_see_all_and_inactive_users_nothing(world):
    root = factories.user(is_superuser=True)
    assert can(root, Action.MANAGE, world.cluster)
    viewer = world.users["viewer"]
    viewer.is_active = False
    viewer.save()
    assert not can(viewer, Action.VIEW, world.cluster)
    assert (
        not Cluster.objects.filter(pk=world.cluster.pk)
        .filter(pk__in=clusters_for(viewer).values("pk"))
        .exists()
    )
