"""A backup imported from Velero says where it came from (its storage location, schedule,
source Kubernetes version) instead of an "unknown" cluster: sync keeps it, the list,
the page and the API show it, to whoever may see the backup, and to no one else."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from backups.provenance import describe, read, short
from backups.sync import backup_from_document
from tests.conftest import PERSONAS

pytestmark = pytest.mark.django_db


def velero_document(name: str = "daily-20261201020000", **extra_labels) -> dict:
    """A velero-backup.json as Velero 1.18 writes it (the fields sync reads, and more)."""
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Backup",
        "metadata": {
            "name": name,
            "namespace": "velero",
            "labels": {"velero.io/storage-location": "default",
                       "velero.io/schedule-name": "daily", **extra_labels},
            "annotations": {
                "velero.io/source-cluster-k8s-gitversion": "v1.33.4",
                "velero.io/source-cluster-k8s-major-version": "1",
                "velero.io/source-cluster-k8s-minor-version": "33",
                "velero.io/resource-timeout": "10m0s",
            },
        },
        "spec": {"includedNamespaces": ["*"], "storageLocation": "default", "ttl": "720h0m0s",
                 "csiSnapshotTimeout": "10m0s", "itemOperationTimeout": "4h0m0s"},
        "status": {"phase": "Completed", "formatVersion": "1.1.0"},
    }  # fmt: skip


@pytest.fixture
def imported(world):
    backup = backup_from_document(world.location, velero_document())
    backup.save()
    return backup


def test_sync_keeps_what_velero_says_of_the_backup(world):
    backup = backup_from_document(world.location, velero_document())
    assert backup.cluster_name == "unknown"
    assert backup.imported_from == {
        "writer": "velero", "storage_location": "default", "schedule": "daily",
        "kubernetes_version": "v1.33.4",
    }  # fmt: skip
    assert backup.cluster_text == "Velero, location default, schedule daily"
    assert "Written by Velero to its storage location default, by schedule daily" in (
        backup.provenance
    )
    assert "Kubernetes v1.33.4" in backup.provenance


def test_a_backup_another_console_wrote_names_its_cluster(world):
    doc = velero_document(**{"palette.io/cluster-name": "far-away"})
    backup = backup_from_document(world.location, doc)
    assert backup.cluster_name == "far-away" and backup.cluster_text == "far-away"
    assert backup.imported_from["writer"] == "console"
    assert backup.provenance.startswith("Written by a backup console from cluster far-away")


def test_the_storage_location_falls_back_to_the_spec_and_empty_says_so():
    assert read({}, {}, "primary", "")["storage_location"] == "primary"
    assert read({}, {}, "", "") == {"writer": "velero"}
    assert short({}) == "" and "says nothing more" in describe({})


def test_a_crafted_label_is_refused_by_the_schema(world):
    doc = velero_document(**{"velero.io/schedule-name": "x\r\nforged: line"})
    with pytest.raises(ValueError, match="labels"):
        backup_from_document(world.location, doc)
    doc = velero_document()
    doc["spec"]["storageLocation"] = "has spaces"
    with pytest.raises(ValueError, match="storageLocation"):
        backup_from_document(world.location, doc)


def test_the_console_s_own_backups_show_their_cluster(world):
    assert world.backup.provenance == "" and world.backup.cluster_text == world.cluster.name
    assert world.backup.velero_volume_note == ""


def test_only_velero_s_backups_say_which_volume_data_the_console_restores(world):
    velero = backup_from_document(world.location, velero_document())
    note = velero.velero_volume_note
    assert "restores Velero's CSI snapshots" in note
    assert "cannot read Velero's own uploads" in note and "Kopia or restic" in note
    console = backup_from_document(
        world.location, velero_document(**{"palette.io/cluster-name": "far-away"})
    )
    assert console.velero_volume_note == ""  # its own volume records say it all


SEE_IT = {"admin", "operator", "viewer", "team_admin"}


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "anonymous"])
def test_the_pages_show_where_it_came_from_to_whoever_sees_it(persona, world, imported, login):
    client = login(world.users[persona])
    detail = client.get(reverse("backup_detail", args=[imported.pk]))
    listed = client.get(reverse("backup_list")).content.decode()
    if persona not in SEE_IT:  # no workspace role: an import has no cluster to grant
        assert detail.status_code == 404
        assert imported.name not in listed
        return
    assert detail.status_code == 200
    page = detail.content.decode()
    assert "Came from" in page and "Written by Velero to its storage location default" in page
    assert "not recorded (Velero, location default, schedule daily)" in page
    assert "Kubernetes v1.33.4" in page
    assert 'id="velero-volume-note"' in page and "restores Velero&#x27;s CSI snapshots" in page
    row = next(line for line in listed.splitlines() if imported.name in line)
    assert "<td>Velero, location default, schedule daily</td>" in row


def test_anonymous_visitors_go_to_the_login_page(world, imported, client):
    response = client.get(reverse("backup_detail", args=[imported.pk]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_api_shows_it(world, imported, login):
    client = login(world.users["viewer"])
    body = json.loads(client.get(f"/api/v1/backups/{imported.pk}/").content)
    assert body["cluster"] == "unknown" and body["source"] == "imported"
    assert body["imported_from"] == imported.imported_from
    assert body["provenance"] == imported.provenance
    own = json.loads(client.get(f"/api/v1/backups/{world.backup.pk}/").content)
    assert own["imported_from"] == {} and own["provenance"] == ""
    outsider = login(world.users["outsider"]).get(f"/api/v1/backups/{imported.pk}/")
    assert outsider.status_code == 404


VOLUMES = [  # method, state, what the page says Velero can restore of it
    ("snapshot", "succeeded", "Yes: the CSI snapshot, as its own"),
    ("snapshot_and_copy", "succeeded", "The CSI snapshot, yes; the tar copy, no"),
    ("copy", "succeeded", "No: the copy is the console&#x27;s own tar"),
    ("copy", "failed", "Nothing: no volume data was kept"),
    ("", "skipped", "Nothing: no volume data was kept"),
]


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "anonymous"])
def test_the_backup_page_says_per_volume_what_velero_can_restore(persona, world, login):
    from backups.models import VolumeResult

    backup = world.backup
    type(backup).objects.filter(pk=backup.pk).update(include_disks=True)
    for i, (method, state, _text) in enumerate(VOLUMES):
        VolumeResult.objects.create(backup=backup, namespace="shop", claim=f"c{i}",
                                    method=method, state=state)  # fmt: skip
    response = login(world.users[persona]).get(reverse("backup_detail", args=[backup.pk]))
    if persona == "outsider":
        assert response.status_code == 404
        return
    assert response.status_code == 200
    page = response.content.decode()
    assert "Velero can restore" in page and 'id="velero-volumes"' in page
    assert "It cannot read the console's copies" in page
    cells = [line for line in page.splitlines() if 'class="velero-reads"' in line]
    assert len(cells) == len(VOLUMES)
    for (_m, _s, text), cell in zip(VOLUMES, cells, strict=True):
        assert text in cell, cell
