"""Fixtures every test can use: the seven personas and a small world around them."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from guardian.shortcuts import assign_perm

from backups.models import BackupRun, EtcdPolicy, EtcdRestore, Schedule
from tests import factories
from workspaces.models import Cluster
from workspaces.roles import Role


@dataclass
class World:
    """One workspace with a cluster, a location, a backup, a restore and a snapshot,
    and one user per persona (anonymous is simply not logged in)."""

    workspace: object
    cluster: object
    location: object
    backup: object
    restore: object
    snapshot: object
    schedule: object
    run: object
    etcd_restore: object
    users: dict


# admin, operator, viewer: a workspace role each (the viewer's through a team);
# team_admin: the Admin role only through a team; cluster_grantee: no role, only
# grants on the one cluster (view, backup, restore, snapshot), as an operator of
# that cluster; outsider: nothing in the workspace; anonymous: not logged in.
PERSONAS = (
    "admin",
    "operator",
    "viewer",
    "team_admin",
    "cluster_grantee",
    "outsider",
    "anonymous",
)
CLUSTER_GRANTS = ("view_cluster", "backup_cluster", "restore_cluster", "snapshot_cluster")


@pytest.fixture
def world(db) -> World:
    ws = factories.workspace("Payments")
    cluster = factories.cluster(ws, "payments-prod")
    loc = factories.location(ws, "payments-store")
    backup = factories.backup(cluster, loc)
    users = {name: factories.user(name) for name in PERSONAS if name != "anonymous"}
    ws.grant(Role.ADMIN, user=users["admin"])
    ws.grant(Role.OPERATOR, user=users["operator"])
    # The viewer's role comes through a team, as it usually does.
    ws.grant(Role.VIEWER, group=factories.team("auditors", users["viewer"]))
    ws.grant(Role.ADMIN, group=factories.team("owners", users["team_admin"]))
    for perm in CLUSTER_GRANTS:
        assign_perm(perm, users["cluster_grantee"], cluster)
    # Workspace creators: the admin persona's platform team may create workspaces.
    platform = factories.team("platform", users["admin"])
    platform.permissions.add(Permission.objects.get(codename="add_workspace"))
    users["anonymous"] = None
    schedule = Schedule.objects.create(
        workspace=ws, cluster=cluster, prefix="nightly", location=loc, preset=Schedule.Preset.WEEKLY
    )
    run = BackupRun.objects.create(workspace=ws, schedule=schedule, started_at=timezone.now())
    Cluster.objects.filter(pk=cluster.pk).update(etcd_endpoint="https://127.0.0.1:9")
    cluster.refresh_from_db()
    EtcdPolicy.objects.create(cluster=cluster, location=loc)
    snapshot = factories.snapshot(cluster, loc)
    return World(
        etcd_restore=EtcdRestore.objects.create(
            snapshot=snapshot,
            snapshot_name=snapshot.name,
            workspace=ws,
            cluster=cluster,
            cluster_name=cluster.name,
        ),  # fmt: skip
        schedule=schedule,
        run=run,
        workspace=ws,
        cluster=cluster,
        location=loc,
        backup=backup,
        restore=factories.restore(backup, cluster),
        snapshot=snapshot,
        users=users,
    )


@pytest.fixture
def login(client):
    """login(user) -> the test client logged in as that user (None = anonymous)."""

    def _login(user):
        client.logout()
        if user is not None:
            client.force_login(user)
        return client

    return _login


# The test environment runs on this machine: its clusters, stores and etcds are on
# loopback (allowed past the egress policy), cluster B's etcd is plaintext, and
# filesystem locations live in the temporary directory (pytest's tmp_path).
TEST_EGRESS_ALLOW = ["127.0.0.0/8", "::1/128", "localhost"]
TEST_FILESYSTEM_ROOTS = [tempfile.gettempdir()]


def policy_env() -> dict[str, str]:
    """The same server policies as environment variables, for the console processes
    that tests start (workers, commands, scripts)."""
    return {
        "PALETTE_EGRESS_ALLOW": ",".join(TEST_EGRESS_ALLOW),
        "PALETTE_ETCD_ALLOW_PLAINTEXT": "1",
        "PALETTE_FILESYSTEM_ROOTS": ",".join(TEST_FILESYSTEM_ROOTS),
    }


@pytest.fixture(autouse=True)
def _test_environment_settings(settings):
    settings.PALETTE_EGRESS_ALLOW = TEST_EGRESS_ALLOW
    settings.PALETTE_ETCD_ALLOW_PLAINTEXT = True
    settings.PALETTE_FILESYSTEM_ROOTS = [*TEST_FILESYSTEM_ROOTS, str(settings.DATA_DIR / "backups")]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_content_browser_cache():
    # Rows rolled back between tests come back with the same ids over other files.
    yield
    from backups.engine.velero import catalogue

    catalogue.forget()
