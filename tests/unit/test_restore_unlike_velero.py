"""The two restore defaults that differ from Velero's are said where they act: a Service
that loses its node ports lists them, a claim whose volume is left out says so, the
plan counts the volumes left out, and the wizard and the command explain the options."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse

from backups.engine.restore.sanitize import SanitizeOptions, sanitize
from backups.engine.restore.unlike_velero import node_ports
from tests.unit.test_restore_plan import MIX, contents, obj, plan

OPTIONS = SanitizeOptions(backup_name="b", restore_name="r")


def service(**spec) -> dict:
    return obj("Service", "web", "shop", spec={"type": "NodePort", **spec})


def ports() -> list[dict]:  # a fresh list each time: sanitize changes objects in place
    return [{"name": "http", "port": 80, "nodePort": 30080}, {"port": 443, "nodePort": 30443},
            {"name": "internal", "port": 9000}]  # fmt: skip


def test_a_service_says_which_node_ports_it_loses():
    notes: list[str] = []
    body = sanitize("services", service(ports=ports(), healthCheckNodePort=31000), OPTIONS, notes)
    assert all("nodePort" not in p for p in body["spec"]["ports"])
    (note,) = notes
    assert "30080/http, 30443/443, 31000 (health check) are not kept" in note
    assert "Velero keeps node ports that were set explicitly" in note


def test_kept_node_ports_and_services_without_them_say_nothing():
    kept = SanitizeOptions(backup_name="b", restore_name="r", preserve_node_ports=True)
    notes: list[str] = []
    body = sanitize("services", service(ports=ports()), kept, notes)
    assert body["spec"]["ports"][0]["nodePort"] == 30080 and notes == []
    sanitize("services", service(ports=[{"port": 80}]), OPTIONS, notes)
    assert notes == [] and node_ports({"spec": "not a dict"}) == []


def test_the_preview_of_a_service_lists_its_lost_ports():
    archive = contents(obj("Namespace", "shop"), service(ports=ports()))
    item = plan(archive).group("services").items[0]
    assert any("30080/http" in note for note in item.prepare()[1])
    item = plan(archive, preserve_node_ports=True).group("services").items[0]
    assert not any("30080" in note for note in item.prepare()[1])


def test_a_claim_whose_volume_is_left_out_says_what_that_means():
    claim = plan(MIX).group("persistentvolumeclaims").items[0]
    (note,) = claim.prepare()[1]
    assert "PersistentVolume pv-shop is not restored" in note
    assert "Velero restores volumes unless told not to" in note
    assert claim.body()["spec"]["volumeName"] == "pv-shop"  # behaviour unchanged
    with_pvs = plan(MIX, restore_pvs=True).group("persistentvolumeclaims").items[0]
    assert with_pvs.prepare()[1] == []


def test_the_plan_counts_the_volumes_it_leaves_out():
    for result in (plan(MIX), plan(MIX, include_namespaces=["shop"])):
        notes = " ".join(result.notes)
        assert "Restore persistent volumes is off" in notes
    assert "Left out 2 PersistentVolumes" in " ".join(plan(MIX).notes)
    assert "Restore persistent volumes is off" not in " ".join(plan(MIX, restore_pvs=True).notes)


def test_the_command_explains_both_options(capsys):
    with pytest.raises(SystemExit):
        call_command("restore", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "unlike Velero (which restores volumes unless --restore-volumes=false)" in text
    assert "Velero keeps those set explicitly" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "status"),
    [("admin", 200), ("operator", 200), ("team_admin", 200), ("cluster_grantee", 200),
     ("viewer", 403), ("outsider", 404)],
)  # fmt: skip
def test_the_wizard_explains_both_options(persona, status, world, login):
    response = login(world.users[persona]).get(reverse("restore_wizard", args=[world.backup.pk]))
    assert response.status_code == status
    if status == 200:
        page = " ".join(response.content.decode().split())
        assert "Off by default, unlike Velero (which restores volumes unless told not to)" in page
        assert "Velero keeps node ports that were set explicitly" in page
