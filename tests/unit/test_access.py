"""The permission rules of access.py, one sentence each."""

from __future__ import annotations

from guardian.shortcuts import assign_perm

from backups.models import Backup, Restore
from locations.models import BackupLocation
from tests import factories
from workspaces.access import can, clusters_for, workspaces_for
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
    assert list(Backup.objects.restrict(viewer)) == [world.backup]
    assert list(Restore.objects.restrict(viewer)) == [world.restore]
    world.cluster.delete()
    assert list(Backup.objects.restrict(viewer)) == [world.backup]
    assert not Backup.objects.restrict(world.users["outsider"]).exists()


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
    assert not BackupLocation.objects.restrict(users["outsider"]).exists()
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


def test_every_model_the_pages_show_has_a_rule_that_costs_one_query(
    world, django_assert_num_queries
):
    from django.apps import apps

    from workspaces.access import RestrictedQuerySet

    models = [
        model
        for label in ("workspaces", "backups", "locations")
        for model in apps.get_app_config(label).get_models()
        if not model.__name__.endswith("ObjectPermission")  # guardian's grant rows
    ]
    assert (
        len(models) == 18
    )  # + ResourceModifierSet (#20), VolumeResult, HookResult, ResticSecret (#12), LocationKey (#17)
    for model in models:
        assert isinstance(model._default_manager.all(), RestrictedQuerySet), model
        for persona in ("viewer", "cluster_grantee", "outsider"):
            with django_assert_num_queries(1):
                list(model._default_manager.restrict(world.users[persona]))


def test_a_single_cluster_grantee_gets_each_row_by_its_own_rule(world):
    from django.utils import timezone

    from backups.models import BackupRun, EtcdPolicy, RestoreItem, Schedule
    from workspaces import audit
    from workspaces.models import AuditEvent, Membership

    ws, mine, grantee = world.workspace, world.cluster, world.users["cluster_grantee"]
    other = factories.cluster(ws, "payments-other")
    other_backup = factories.backup(other, world.location)
    wide = Schedule.objects.create(workspace=ws, prefix="wide", location=world.location)
    other_run = BackupRun.objects.create(workspace=ws, schedule=wide, started_at=timezone.now())
    other_backup.run = other_run
    other_backup.save()
    shared_run = BackupRun.objects.create(workspace=ws, schedule=wide, started_at=timezone.now())
    factories.backup(mine, world.location, run=shared_run)
    mine_event = audit.record(None, "backed up", world.backup)
    audit.record(None, "backed up", other_backup)
    audit.record(None, "granted", ws, member="x")
    RestoreItem.objects.create(
        restore=world.restore, resource="configmaps", name="a", outcome="created"
    )
    other_restore = factories.restore(other_backup, other)
    RestoreItem.objects.create(
        restore=other_restore, resource="configmaps", name="b", outcome="created"
    )

    assert set(Cluster.objects.restrict(grantee)) == {mine}
    assert list(Membership.objects.restrict(grantee)) == []
    assert set(Schedule.objects.restrict(grantee)) == {world.schedule}
    # Its own schedule's firing, and the workspace run that backed it up; not the
    # workspace run that backed up only the other cluster.
    assert set(BackupRun.objects.restrict(grantee)) == {world.run, shared_run}
    assert set(AuditEvent.objects.restrict(grantee)) == {mine_event}
    assert {i.name for i in RestoreItem.objects.restrict(grantee)} == {"a"}
    assert set(EtcdPolicy.objects.restrict(grantee)) == {mine.etcd_policy}
    assert set(Backup.objects.restrict(grantee)) == set(Backup.objects.filter(cluster=mine))
    # Related collections through their own rule, not the parent's.
    assert list(ws.clusters.restrict(grantee)) == [mine]
    assert list(ws.audit_events.restrict(grantee)) == [mine_event]
    assert list(ws.memberships.restrict(grantee)) == []
    # The viewer of the whole workspace sees all of them.
    viewer = world.users["viewer"]
    assert set(BackupRun.objects.restrict(viewer)) == {world.run, shared_run, other_run}
    assert AuditEvent.objects.restrict(viewer).count() == 3
    assert ws.memberships.restrict(viewer).count() == ws.memberships.count()


def test_can_asks_each_models_rule_and_about_a_workspace_as_a_whole(world):
    grantee = world.users["cluster_grantee"]
    assert can(grantee, Action.BACKUP, world.backup)
    assert not can(grantee, Action.MANAGE, world.backup)
    assert can(grantee, Action.RESTORE, world.cluster)
    assert workspaces_for(grantee).filter(pk=world.workspace.pk).exists()
    assert not can(grantee, Action.VIEW, world.workspace)
    assert can(world.users["team_admin"], Action.MANAGE, world.schedule)
    assert not can(world.users["viewer"], Action.MANAGE, world.schedule)


def test_operation_q_is_the_operation_rule_for_older_callers(world):
    from workspaces.access import operation_q

    for persona in ("viewer", "cluster_grantee", "outsider", "anonymous"):
        user = world.users[persona]
        assert set(Backup.objects.filter(operation_q(user))) == set(Backup.objects.restrict(user))
        restores = Restore.objects.filter(operation_q(user, cluster_field="target_cluster"))
        assert set(restores) == set(Restore.objects.restrict(user))
