"""Critical finding: another tenant's etcd.

The attack: an Admin registers a cluster whose etcd endpoint is another
workspace's etcd and takes snapshots of it (every Secret of that cluster). Now:
an endpoint must authenticate with a client certificate unless the server
allows plaintext; it is unique; etcd's cluster ID is recorded at registration,
is unique, and is checked again before every snapshot and restore. Against the
real etcds of devenv (A: TLS with client certificates, B: plaintext).
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from backups.jobs import JobRefused, start_etcd_restore
from backups.models import EtcdSnapshot, Status
from backups.tasks import run_etcd_snapshot
from tests import factories
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = pytest.mark.integration


def certs_of(devenv) -> list[str]:
    return ["--etcd-ca", devenv["CLUSTER_A_ETCD_CA"], "--etcd-cert", devenv["CLUSTER_A_ETCD_CERT"],
            "--etcd-key", devenv["CLUSTER_A_ETCD_KEY"]]  # fmt: skip


def register(devenv, name: str, workspace: str, letter: str, endpoint: str, *extra):
    call_command("register_cluster", name, "--workspace", workspace,
                 "--kubeconfig", devenv[f"CLUSTER_{letter}_KUBECONFIG"],
                 "--etcd-endpoint", endpoint, *extra)  # fmt: skip
    return Cluster.objects.get(name=name)


def pem(devenv, key: str) -> str:
    return Path(devenv[key]).read_text()


def form_data(devenv, name: str, endpoint: str, *, certs: bool = True) -> dict:
    data = {"name": name, "etcd_endpoint": endpoint,
            "kubeconfig": SimpleUploadedFile("kubeconfig",
                                             Path(devenv["CLUSTER_A_KUBECONFIG"]).read_bytes())}  # fmt: skip
    if certs:
        data |= {key: pem(devenv, f"CLUSTER_A_ETCD_{key[5:].upper()}")
                 for key in ("etcd_ca", "etcd_cert", "etcd_key")}  # fmt: skip
    return data


@pytest.fixture
def tenants(db):
    ours, theirs = factories.workspace("Ours"), factories.workspace("Theirs")
    attacker = factories.user("attacker")
    ours.grant(Role.ADMIN, user=attacker)
    return ours, theirs, attacker


def test_plaintext_or_certificate_less_etcd_is_refused_unless_allowed(
    devenv, tenants, settings, client
):
    settings.PALETTE_ETCD_ALLOW_PLAINTEXT = False
    b = devenv["CLUSTER_B_ETCD_ENDPOINT"]
    with pytest.raises(CommandError, match="does not allow plaintext etcd"):
        register(devenv, "b", "ours", "B", b)
    with pytest.raises(CommandError, match="Give the etcd client certificate"):
        register(devenv, "a", "ours", "A", devenv["CLUSTER_A_ETCD_ENDPOINT"],
                 "--etcd-ca", devenv["CLUSTER_A_ETCD_CA"])  # fmt: skip
    assert not Cluster.objects.exists()
    ours, _, attacker = tenants
    client.force_login(attacker)
    response = client.post(
        reverse("cluster_register", args=[ours.slug]), form_data(devenv, "b", b, certs=False)
    )
    assert response.status_code == 200
    assert "does not allow plaintext etcd" in html.unescape(response.content.decode())
    assert not Cluster.objects.exists()
    # The admin: a superuser cannot point a cluster at a plaintext etcd either.
    cluster = register(
        devenv, "a", "ours", "A", devenv["CLUSTER_A_ETCD_ENDPOINT"], *certs_of(devenv)
    )
    client.force_login(factories.user("root", is_superuser=True, is_staff=True))
    response = admin_change(client, cluster, etcd_endpoint=b)
    assert "does not allow plaintext etcd" in html.unescape(response.content.decode())
    cluster.refresh_from_db()
    assert cluster.etcd_endpoint == devenv["CLUSTER_A_ETCD_ENDPOINT"]
    # Allowed by the server: a plaintext etcd registers, with its identity.
    settings.PALETTE_ETCD_ALLOW_PLAINTEXT = True
    plain = register(devenv, "b", "theirs", "B", b)
    assert plain.etcd_cluster_id and plain.etcd_cluster_id != cluster.etcd_cluster_id


def admin_change(client, cluster, **changes):
    """Post the cluster's admin change form with ``changes``."""
    url = reverse("admin:workspaces_cluster_change", args=[cluster.pk])
    data = {"workspace": cluster.workspace_id, "name": cluster.name,
            "description": cluster.description, "etcd_endpoint": cluster.etcd_endpoint,
            "etcd_ca": cluster.etcd_ca, "etcd_cert": cluster.etcd_cert,
            "etcd_cluster_id": cluster.etcd_cluster_id, **changes}  # fmt: skip
    return client.post(url, data)


def test_another_tenants_etcd_cannot_be_registered(devenv, tenants, client):
    _, theirs, attacker = tenants
    a = devenv["CLUSTER_A_ETCD_ENDPOINT"]
    victim = register(devenv, "victim", theirs.slug, "A", a, *certs_of(devenv))
    assert len(victim.etcd_cluster_id) >= 8
    assert [m["name"] for m in victim.etcd_members] == [devenv["CLUSTER_A_ETCD_NAME"]]
    # Even holding the victim's client certificate: the same endpoint, or the same
    # etcd under another name, is refused on the page, by the command, in the admin.
    ours = tenants[0]
    client.force_login(attacker)
    for endpoint, message in (
        (a, "Another registered cluster already uses this etcd endpoint"),
        (a.replace("127.0.0.1", "localhost"), "already belongs to another registered cluster"),
    ):
        response = client.post(
            reverse("cluster_register", args=[ours.slug]), form_data(devenv, "grab", endpoint)
        )
        assert response.status_code == 200
        assert message in html.unescape(response.content.decode()), endpoint
        with pytest.raises(CommandError, match=message):
            register(devenv, "grab", ours.slug, "A", endpoint, *certs_of(devenv))
    assert not Cluster.objects.filter(name="grab").exists()
    mine = factories.cluster(ours, "mine")
    client.force_login(factories.user("root", is_superuser=True, is_staff=True))
    response = admin_change(
        client, mine, etcd_endpoint=a.replace("127.0.0.1", "localhost"),
        etcd_ca=victim.etcd_ca, etcd_cert=victim.etcd_cert, new_etcd_key=victim.etcd_key,
    )  # fmt: skip
    assert "already belongs to another registered cluster" in html.unescape(
        response.content.decode()
    )
    mine.refresh_from_db()
    assert mine.etcd_endpoint == "" and mine.etcd_cluster_id == ""


def test_snapshots_and_restores_refuse_an_endpoint_that_answers_as_another_etcd(
    devenv, tenants, tmp_path
):
    ours, _, _ = tenants
    factories.location(ours, "disk", path=str(tmp_path), is_default=True, prefix="velero")
    cluster = register(devenv, "ours-b", ours.slug, "B", devenv["CLUSTER_B_ETCD_ENDPOINT"])
    recorded = cluster.etcd_cluster_id
    call_command("etcd_snapshot", "ours-b", "--location", "disk", "--wait")  # its own etcd: fine
    snapshot = EtcdSnapshot.objects.get(cluster=cluster)
    assert snapshot.status == Status.COMPLETED
    # The endpoint now leads to another etcd (a DNS change, an edited row): cluster A's.
    Cluster.objects.filter(pk=cluster.pk).update(
        etcd_endpoint=devenv["CLUSTER_A_ETCD_ENDPOINT"],
        etcd_ca=pem(devenv, "CLUSTER_A_ETCD_CA"),
        etcd_cert=pem(devenv, "CLUSTER_A_ETCD_CERT"),
    )
    cluster.refresh_from_db()
    cluster.etcd_key = pem(devenv, "CLUSTER_A_ETCD_KEY")
    cluster.save(update_fields=["etcd_key"])
    with pytest.raises(CommandError, match=f"not {recorded} recorded when ours-b was registered"):
        call_command("etcd_snapshot", "ours-b", "--location", "disk", "--wait")
    with pytest.raises(JobRefused, match="now answers as etcd cluster"):
        start_etcd_restore(snapshot)
    # A job queued before the change is refused when it runs.
    queued = EtcdSnapshot.objects.create(
        name="queued", workspace=ours, cluster=cluster, cluster_name=cluster.name,
        location=snapshot.location,
    )  # fmt: skip
    assert run_etcd_snapshot(queued.pk) == Status.FAILED
    queued.refresh_from_db()
    assert "belongs to cluster ID" in queued.error and "refused" in queued.error
    assert not list(tmp_path.rglob("queued*"))
    assert EtcdSnapshot.objects.filter(cluster=cluster).count() == 2
