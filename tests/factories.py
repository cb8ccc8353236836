"""Real objects for tests, built through the same model methods the console uses."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from backups.models import Backup, EtcdSnapshot, Restore, Status
from locations.models import BackupLocation
from workspaces.models import Cluster, Workspace

_seq = itertools.count(1)

PASSWORD = "correct-horse-battery"

# A kubeconfig whose server refuses connections at once (port 9 on loopback):
# pages that check health get a real, fast "connection refused".
UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:9
    certificate-authority-data: ""
users:
- name: u
  user:
    token: {token}
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
current-context: ctx
"""


def user(username: str | None = None, **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username, password=PASSWORD, **extra)


def team(name: str | None = None, *members) -> Group:
    group = Group.objects.create(name=name or f"team{next(_seq)}")
    for member in members:
        member.groups.add(group)
    return group


def workspace(name: str | None = None) -> Workspace:
    name = name or f"Workspace {next(_seq)}"
    return Workspace.objects.create(name=name, slug=name.lower().replace(" ", "-"))


def cluster(
    ws: Workspace, name: str | None = None, token: str = "not-a-real-token", **extra
) -> Cluster:
    return Cluster.objects.create(
        workspace=ws,
        name=name or f"cluster-{next(_seq)}",
        kubeconfig=UNREACHABLE_KUBECONFIG.format(token=token),
        **extra,
    )


def location(ws: Workspace | None = None, name: str | None = None, **extra) -> BackupLocation:
    defaults = {"provider": BackupLocation.Provider.FILESYSTEM, "path": "/tmp/backups"}
    defaults.update(extra)
    return BackupLocation.objects.create(name=name or f"loc-{next(_seq)}", workspace=ws, **defaults)


def backup(c: Cluster, loc: BackupLocation, **extra) -> Backup:
    n = next(_seq)
    defaults = {
        "name": f"manual-{c.name}-{n:014d}",
        "workspace": c.workspace,
        "cluster": c,
        "cluster_name": c.name,
        "location": loc,
        "status": Status.COMPLETED,
        "expires_at": timezone.now() + timedelta(days=30),
    }
    defaults.update(extra)
    return Backup.objects.create(**defaults)


def restore(b: Backup, target: Cluster, **extra) -> Restore:
    n = next(_seq)
    return Restore.objects.create(
        name=f"restore-{n}",
        backup=b,
        backup_name=b.name,
        source_cluster_name=b.cluster_name,
        workspace=target.workspace,
        target_cluster=target,
        target_cluster_name=target.name,
        **extra,
    )


def snapshot(c: Cluster, loc: BackupLocation, **extra) -> EtcdSnapshot:
    n = next(_seq)
    return EtcdSnapshot.objects.create(
        name=f"{c.name}-etcd-{n:014d}",
        workspace=c.workspace,
        cluster=c,
        cluster_name=c.name,
        location=loc,
        **extra,
    )
