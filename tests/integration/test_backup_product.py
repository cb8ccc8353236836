"""Backups from the pages and the command, run by the real task against cluster A."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from backups.models import Backup, Status
from backups.tasks import run_backup
from locations.models import BackupLocation
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = pytest.mark.integration


@pytest.fixture
def eager():
    """Tasks run where they are queued (the row is still claimed like on a worker)."""
    from palette_site.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def setup(db, devenv, tmp_path):
    admin = factories.user("admin")
    ws = factories.workspace("Demo")
    ws.grant(Role.ADMIN, user=admin)
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    cluster = Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=flatten_kubeconfig(path.read_text(), path.parent)
    )
    location = factories.location(ws, "disk", path=str(tmp_path), is_default=True)
    return admin, cluster, location, tmp_path


def test_the_command_backs_up_and_waits(setup, capsys):
    _, cluster, location, root = setup
    call_command("backup", "cluster-a", "--location", "disk", "--include-namespaces", "shop",
                 "--ttl", "24h", "--wait")  # fmt: skip
    name, phase = capsys.readouterr().out.split()
    assert name.startswith("manual-cluster-a-") and phase == "Completed"
    backup = Backup.objects.get(name=name)
    assert backup.status == Status.COMPLETED and backup.items_done > 0
    archive = root / "backups" / name / f"{name}.tar.gz"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == backup.sha256
    assert backup.size_bytes == archive.stat().st_size
    assert (backup.expires_at - backup.started_at).total_seconds() == pytest.approx(86400, abs=5)
    meta = json.loads((root / "backups" / name / "velero-backup.json").read_text())
    assert meta["status"]["phase"] == "Completed"


def test_the_command_reports_a_failure_and_exits_non_zero(setup, capsys):
    _, cluster, location, _ = setup
    Cluster.objects.filter(pk=cluster.pk).update(
        kubeconfig=factories.UNREACHABLE_KUBECONFIG.format(token="t")
    )
    with pytest.raises(CommandError, match="connection refused"):
        call_command("backup", "cluster-a", "--location", "disk", "--wait")
    assert capsys.readouterr().out.split()[1] == "Failed"


def test_a_partial_failure_names_its_errors(setup, capsys):
    # Velero's rule: a chosen namespace that does not exist is an error of the backup.
    with pytest.raises(CommandError) as failed:
        call_command("backup", "cluster-a", "--location", "disk", "--include-namespaces",
                     "shop,no-such-namespace-here", "--wait")  # fmt: skip
    assert capsys.readouterr().out.split()[1] == "PartiallyFailed"
    assert str(failed.value).splitlines() == [
        "1 item failed; see the backup's page or log.",
        "  Namespace no-such-namespace-here was chosen but does not exist in the cluster.",
    ]


def test_the_command_refuses_bad_input(setup):
    with pytest.raises(CommandError, match="no cluster"):
        call_command("backup", "nope", "--location", "disk")
    with pytest.raises(CommandError, match="not a duration"):
        call_command("backup", "cluster-a", "--location", "disk", "--ttl", "30d")
    with pytest.raises(CommandError, match="63 lower-case"):
        call_command("backup", "cluster-a", "--location", "disk", "--name", "Bad_Name")


def test_a_backup_from_the_page_can_be_watched_browsed_downloaded_and_deleted(
    setup, client, eager, django_capture_on_commit_callbacks
):
    admin, cluster, location, root = setup
    client.force_login(admin)
    form = client.get(reverse("backup_create", args=["cluster-a"])).content.decode()
    assert 'value="shop"' in form  # namespaces read from the live cluster
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("backup_create", args=["cluster-a"]),
            {"prefix": "manual", "location": location.pk, "ttl": "168h",
             "include_namespaces": ["shop", "billing"], "cluster_resources": "auto"},
        )  # fmt: skip
    assert response.status_code == 302
    backup = Backup.objects.get()
    assert backup.status == Status.COMPLETED, backup.error
    status = client.get(reverse("backup_status", args=[backup.pk]), HTTP_HX_REQUEST="true")
    assert status.status_code == 286  # tells htmx to stop polling
    contents = client.get(reverse("backup_contents", args=[backup.pk])).content.decode()
    assert "v1/Secret" in contents and "apps/v1/Deployment" in contents
    listing = root / "backups" / backup.name / f"{backup.name}-resource-list.json.gz"
    secrets = json.loads(gzip.decompress(listing.read_bytes()))["v1/Secret"]
    secret = next(s for s in secrets if s.startswith("shop/"))
    namespace, name = secret.split("/")
    item = client.get(reverse("backup_item", args=[backup.pk]),
                      {"type": "v1/Secret", "namespace": namespace, "name": name})  # fmt: skip
    assert item.status_code == 200
    assert "••••" in item.content.decode()
    download = client.get(reverse("backup_download", args=[backup.pk]))
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == backup.sha256
    client.post(reverse("backup_delete", args=[backup.pk]), {"confirm_name": backup.name})
    assert not Backup.objects.filter(pk=backup.pk).exists()
    assert not (root / "backups" / backup.name).exists()


def test_a_second_delivery_of_the_task_does_nothing(setup):
    _, cluster, location, _ = setup
    backup = Backup.objects.create(
        name="twice", workspace=cluster.workspace, cluster=cluster, cluster_name=cluster.name,
        location=location, include_namespaces=["monitoring"],
    )  # fmt: skip
    assert run_backup(backup.pk) == Status.COMPLETED
    assert run_backup(backup.pk) == "skipped"


def test_an_unavailable_location_is_refused_before_starting(setup):
    _, cluster, location, _ = setup
    BackupLocation.objects.filter(pk=location.pk).update(
        status=BackupLocation.Status.UNAVAILABLE, status_message="Bucket 'x' does not exist."
    )
    with pytest.raises(CommandError, match="unavailable"):
        call_command("backup", "cluster-a", "--location", "disk")
