"""Management commands: clear errors, non-zero exit on failure."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests import factories
from tests.factories import UNREACHABLE_KUBECONFIG
from workspaces.models import AuditEvent, Cluster, Workspace


@pytest.fixture
def kubeconfig_file(tmp_path):
    path = tmp_path / "config"
    path.write_text(UNREACHABLE_KUBECONFIG.format(token="t"))
    return path


def test_register_cluster_needs_an_existing_workspace(db, kubeconfig_file):
    with pytest.raises(CommandError, match="no workspace 'nope'"):
        call_command(
            "register_cluster", "c1", "--workspace", "nope", "--kubeconfig", str(kubeconfig_file)
        )


def test_register_cluster_refuses_an_unreadable_kubeconfig(db, tmp_path):
    factories.workspace("Team")
    with pytest.raises(CommandError, match="Cannot read the kubeconfig"):
        call_command(
            "register_cluster",
            "c1",
            "--workspace",
            "team",
            "--kubeconfig",
            str(tmp_path / "missing"),
        )
    bad = tmp_path / "bad"
    bad.write_text("kind: Pod\n")
    with pytest.raises(CommandError, match="not a kubeconfig"):
        call_command("register_cluster", "c1", "--workspace", "team", "--kubeconfig", str(bad))


def test_register_cluster_refuses_an_unreachable_cluster_unless_told(db, kubeconfig_file, capsys):
    factories.workspace("Team")
    args = ["register_cluster", "c1", "--workspace", "Team", "--kubeconfig", str(kubeconfig_file)]
    with pytest.raises(CommandError, match="connection refused"):
        call_command(*args)
    assert not Cluster.objects.exists()
    call_command(*args, "--allow-unreachable")
    cluster = Cluster.objects.get(name="c1")
    assert cluster.health == Cluster.Health.UNREACHABLE
    assert "unreachable" in capsys.readouterr().out
    assert AuditEvent.objects.filter(action="registered").exists()


def test_register_cluster_rejects_a_bad_name_and_duplicates(db, kubeconfig_file):
    factories.workspace("Team")
    with pytest.raises(CommandError, match="lower-case"):
        call_command("register_cluster", "Bad_Name", "--workspace", "team", "--kubeconfig",
                     str(kubeconfig_file), "--allow-unreachable")  # fmt: skip
    call_command("register_cluster", "c1", "--workspace", "team", "--kubeconfig",
                 str(kubeconfig_file), "--allow-unreachable")  # fmt: skip
    with pytest.raises(CommandError, match="already registered"):
        call_command("register_cluster", "c1", "--workspace", "team", "--kubeconfig",
                     str(kubeconfig_file), "--allow-unreachable")  # fmt: skip


def test_register_cluster_with_etcd_turns_snapshots_on(db, kubeconfig_file, tmp_path):
    from backups.models import EtcdPolicy
    from devenv.certs import new_ca, new_leaf, pem

    factories.workspace("Team")
    ca_key, ca = new_ca("etcd-ca")
    key, cert = new_leaf(ca_key, ca, "console", client=True)
    for name, obj in (("ca", ca), ("cert", cert), ("key", key)):
        (tmp_path / name).write_bytes(pem(obj))
    call_command(
        "register_cluster", "c1", "--workspace", "team", "--kubeconfig", str(kubeconfig_file),
        "--etcd-endpoint", "https://127.0.0.1:2379", "--etcd-ca", str(tmp_path / "ca"),
        "--etcd-cert", str(tmp_path / "cert"), "--etcd-key", str(tmp_path / "key"),
        "--allow-unreachable",
    )  # fmt: skip
    policy = EtcdPolicy.objects.get(cluster__name="c1")
    assert (policy.enabled, policy.cron, policy.keep) == (True, "0 */1 * * *", 12)
    assert Cluster.objects.get(name="c1").etcd_key == pem(key).decode()


def test_demo_is_idempotent(db, settings, tmp_path, capsys, monkeypatch):
    settings.DATA_DIR = tmp_path
    monkeypatch.setenv("DEMO_PASSWORD", "demo-pass")
    monkeypatch.setattr("devenv.load_env", lambda: {})
    call_command("demo", "--no-seed")
    call_command("demo", "--no-seed")
    out = capsys.readouterr().out
    assert "log in as demo / demo-pass" in out
    assert "register_cluster" in out  # says how to add a cluster when none could be built
    workspace = Workspace.objects.get(slug="demo")
    assert workspace.memberships.count() == 1
    assert workspace.locations.get().is_default


def test_the_demo_user_is_a_workspace_admin_not_a_superuser(db, settings, tmp_path, monkeypatch):
    from django.contrib.auth import get_user_model

    from workspaces.access import can
    from workspaces.roles import Action

    settings.DATA_DIR = tmp_path
    monkeypatch.setattr("devenv.load_env", lambda: {})
    get_user_model().objects.create_superuser("demo", password="x")  # as older demos made it
    call_command("demo", "--no-seed")
    demo = get_user_model().objects.get(username="demo")
    assert not demo.is_superuser and not demo.is_staff
    assert can(demo, Action.MANAGE, Workspace.objects.get(slug="demo"))


def test_serve_and_the_worker_warn_when_run_as_root():
    import os

    from palette_site.command_support import root_warning

    warning = root_warning()
    assert (warning is not None) == (os.geteuid() == 0)
    if warning:
        assert "unprivileged user" in warning
