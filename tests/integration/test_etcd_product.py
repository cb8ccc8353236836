"""etcd snapshots from the command and the pages, with retention and clear failures."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from backups.etcd_policy import tick_etcd
from backups.models import EtcdPolicy, EtcdSnapshot
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.registration import register_cluster
from workspaces.roles import Role

pytestmark = pytest.mark.integration


@pytest.fixture
def place(db, devenv, tmp_path):
    ws = factories.workspace("Demo")
    factories.location(ws, "disk", path=str(tmp_path), is_default=True, prefix="velero")
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    cluster = register_cluster(
        workspace=ws,
        name="cluster-a",
        kubeconfig=flatten_kubeconfig(path.read_text(), path.parent),
        etcd_endpoint=devenv["CLUSTER_A_ETCD_ENDPOINT"],
        etcd_ca=Path(devenv["CLUSTER_A_ETCD_CA"]).read_text(),
        etcd_cert=Path(devenv["CLUSTER_A_ETCD_CERT"]).read_text(),
        etcd_key=Path(devenv["CLUSTER_A_ETCD_KEY"]).read_text(),
    )
    return ws, cluster, tmp_path


def test_the_command_takes_a_tls_snapshot_and_retention_keeps_n(place, capsys):
    _, cluster, root = place
    EtcdPolicy.objects.filter(cluster=cluster).update(keep=2)
    names = []
    for second in range(3):
        call_command("etcd_snapshot", "cluster-a", "--location", "disk", "--wait")
        out = capsys.readouterr().out.split()
        assert out[1] == "Completed"
        names.append(out[0])
        # Names carry the second; make the next one differ.
        EtcdSnapshot.objects.filter(name=out[0]).update(
            created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=second)
        )
    kept = EtcdSnapshot.objects.filter(cluster=cluster)
    assert kept.count() == 2
    snapshot = kept.first()
    stored = root / snapshot.object_key
    assert stored.parent.parent.name == "velero-etcd"  # beside, never inside, the prefix
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == snapshot.sha256
    assert snapshot.revision and snapshot.etcd_version.startswith("3.6")
    policy = EtcdPolicy.objects.get(cluster=cluster)
    assert policy.last_status == "completed"


def test_wrong_certificates_are_explained_everywhere(place, devenv, client, capsys):
    ws, cluster, _ = place
    foreign = Path(devenv["CLUSTER_B_KUBECONFIG"]).parent / "pki"
    cluster.etcd_cert = (foreign / "etcd-client.crt").read_text()  # signed by B's etcd CA
    cluster.etcd_key = (foreign / "etcd-client.key").read_text()
    cluster.save()
    with pytest.raises(CommandError) as failure:
        call_command("etcd_snapshot", "cluster-a", "--location", "disk", "--wait")
    message = str(failure.value)
    assert "certificate" in message.lower()
    assert "BEGIN" not in message
    policy = EtcdPolicy.objects.get(cluster=cluster)
    assert policy.last_status == "failed" and policy.last_error == message
    admin = factories.user("admin")
    ws.grant(Role.ADMIN, user=admin)
    client.force_login(admin)
    page = client.get(reverse("cluster_etcd", args=["cluster-a"])).content.decode()
    assert "failed:" in page


def test_an_unreachable_endpoint_is_explained(place, capsys):
    _, cluster, _ = place
    cluster.etcd_endpoint = "https://127.0.0.1:9"
    cluster.save()
    with pytest.raises(CommandError, match="127.0.0.1:9"):
        call_command("etcd_snapshot", "cluster-a", "--location", "disk", "--wait")


def test_the_policy_starts_snapshots_on_its_schedule(place):
    _, cluster, _ = place
    noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert tick_etcd(noon - timedelta(minutes=30)) == []  # first tick plans 12:00
    assert EtcdPolicy.objects.get(cluster=cluster).next_run_at == noon
    assert tick_etcd(noon - timedelta(minutes=1)) == []
    started = tick_etcd(noon)
    assert [s.cluster_name for s in started] == ["cluster-a"] and started[0].scheduled
    assert tick_etcd(noon + timedelta(seconds=20)) == []
    assert EtcdPolicy.objects.get(cluster=cluster).next_run_at == noon + timedelta(hours=1)


def test_the_page_shows_the_runbook_of_a_snapshot(place, client, capsys):
    ws, cluster, _ = place
    call_command("etcd_snapshot", "cluster-a", "--location", "disk", "--wait")
    snapshot = EtcdSnapshot.objects.get()
    admin = factories.user("admin")
    ws.grant(Role.ADMIN, user=admin)
    client.force_login(admin)
    page = client.get(reverse("etcd_snapshot_detail", args=[snapshot.pk])).content.decode()
    assert "etcdutl snapshot restore" in page and "--bump-revision" in page
    assert "--mark-compacted" in page and snapshot.sha256 in page
    # devenv's control plane can be restored in place: offered to superusers only.
    assert "Let the console do it" not in page
    client.force_login(factories.user("root", is_superuser=True))
    page = client.get(reverse("etcd_snapshot_detail", args=[snapshot.pk])).content.decode()
    assert "Let the console do it" in page
    download = client.get(reverse("etcd_snapshot_download", args=[snapshot.pk]))
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == snapshot.sha256
