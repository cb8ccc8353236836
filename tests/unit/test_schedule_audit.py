"""A schedule's run is audited on the schedule (a cluster schedule was audited as a
backup of the whole workspace), and audit details read as text, not Python."""

from __future__ import annotations

from django.urls import reverse

from backups import scheduling
from workspaces.kube import HealthReport
from workspaces.models import AuditEvent


def test_a_cluster_schedule_run_is_audited_on_the_schedule(world, login, monkeypatch):
    monkeypatch.setattr(
        scheduling, "check_health", lambda kubeconfig: HealthReport(False, message="down")
    )
    scheduling.run_now(world.schedule, world.users["operator"])
    ran = AuditEvent.objects.get(action="ran")
    assert ran.object_type == "schedule" and ran.object_id == str(world.schedule.pk)
    assert not AuditEvent.objects.filter(
        object_type="workspace", action__startswith="backed"
    ).exists()
    page = login(world.users["admin"]).get(reverse("workspace_audit", args=[world.workspace.slug]))
    html = page.content.decode()
    assert "ran schedule" in html and f"skipped: {world.cluster.name}" in html
    assert "['" not in html and "workspace workspace" not in html


def test_an_on_demand_workspace_backup_is_audited_on_the_workspace(world, monkeypatch):
    monkeypatch.setattr(
        scheduling, "check_health", lambda kubeconfig: HealthReport(False, message="down")
    )
    scheduling.backup_workspace(world.workspace, world.location, prefix="now", options={})
    event = AuditEvent.objects.get(action="backed up")
    assert event.object_type == "workspace"


def test_audit_details_read_as_text(world):
    from workspaces import audit

    audit.record(None, "restored", world.restore, mapping={"shop": "shop-copy"}, skipped=["a", "b"])
    event = AuditEvent.objects.get(action="restored")
    assert event.detail_pairs == [("mapping", "shop → shop-copy"), ("skipped", "a, b")]
