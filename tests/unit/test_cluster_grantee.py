"""A user granted ONE cluster (no role in its workspace) sees exactly that cluster's
things on every page, and nothing else of the workspace: not the other clusters'
backups, restores, snapshots, schedules, runs or audit events, not the members,
not the workspace-wide schedules.

Each page is also read by a workspace viewer first, so a string that "does not
appear" is one the page really shows to someone allowed to see it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from backups.models import BackupRun, Schedule
from tests import factories
from workspaces import audit


@dataclass
class Split:
    grantee: object
    viewer: object
    mine: dict  # what the grantee must see: label -> text on the page
    hidden: dict  # what they must not: label -> text
    hidden_urls: list
    run: object


@pytest.fixture
def split(world) -> Split:
    """The world's workspace with a second cluster, each with its own things."""
    ws, admin, mine = world.workspace, world.users["admin"], world.cluster
    other = factories.cluster(ws, "payments-secret")
    other_backup = factories.backup(other, world.location, name="manual-payments-secret-1")
    other_restore = factories.restore(other_backup, other)
    other_snapshot = factories.snapshot(other, world.location)
    other_schedule = Schedule.objects.create(
        workspace=ws, cluster=other, prefix="secretnightly", location=world.location
    )
    Schedule.objects.create(workspace=ws, prefix="wideweekly", location=world.location)
    # A workspace backup run that backed up both clusters, and skipped a third.
    run = BackupRun.objects.create(
        workspace=ws,
        started_at=timezone.now(),
        skipped=[{"cluster": "payments-unseen", "reason": "unreachable-elsewhere"}],
    )
    my_backup = factories.backup(mine, world.location, name="ws-payments-prod-1", run=run)
    other_backup.run = run
    other_backup.save(update_fields=["run"])
    audit.record(admin, "started backup", my_backup)
    audit.record(admin, "started backup", other_backup)
    audit.record(admin, "granted", ws, member="someone-special", role="viewer")
    audit.record(admin, "registered", other)

    grantee = factories.user("one-cluster")
    assign_perm("view_cluster", grantee, mine)
    return Split(
        grantee=grantee,
        viewer=world.users["viewer"],
        mine={"cluster": mine.name, "backup": my_backup.name},
        hidden={
            "other cluster": other.name,
            "other backup": other_backup.name,
            "other restore": other_restore.name,
            "other snapshot": other_snapshot.name,
            "other schedule": other_schedule.prefix,
            "workspace schedule": "wideweekly",
            "member": "team auditors",
            "member in an event": "someone-special",
            "skip of another cluster": "unreachable-elsewhere",
        },
        hidden_urls=[
            reverse("cluster_detail", args=[other.name]),
            reverse("backup_detail", args=[other_backup.pk]),
            reverse("restore_detail", args=[other_restore.pk]),
            reverse("etcd_snapshot_detail", args=[other_snapshot.pk]),
            reverse("schedule_detail", args=[other_schedule.pk]),
            reverse("schedule_detail", args=[Schedule.objects.get(prefix="wideweekly").pk]),
        ],
        run=run,
    )


def pages(world, split) -> list[str]:
    slug, name = world.workspace.slug, world.cluster.name
    return [
        reverse("dashboard"),
        reverse("workspace_list"),
        reverse("workspace_detail", args=[slug]),
        reverse("workspace_audit", args=[slug]),
        reverse("cluster_detail", args=[name]),
        reverse("cluster_backups", args=[name]),
        reverse("cluster_restores", args=[name]),
        reverse("cluster_schedules", args=[name]),
        reverse("cluster_etcd", args=[name]),
        reverse("backup_list"),
        reverse("restore_list"),
        reverse("etcd_snapshot_list"),
        reverse("schedule_calendar") + "?days=366",
        reverse("backup_run_detail", args=[split.run.pk]),
    ]


def test_it_shows_a_single_cluster_grantee_nothing_of_the_other_clusters(world, split, login):
    shown_to_viewer, leaks = set(), {}
    for url in pages(world, split):
        page = login(split.viewer).get(url).content.decode()
        shown_to_viewer |= {label for label, text in split.hidden.items() if text in page}
        response = login(split.grantee).get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        if leaked := [label for label, text in split.hidden.items() if text in page]:
            leaks[url] = leaked
    assert leaks == {}
    # Each hidden thing is really on some page for a viewer of the whole workspace.
    assert shown_to_viewer == set(split.hidden)


def test_it_shows_a_single_cluster_grantee_everything_of_their_cluster(world, split, login):
    client = login(split.grantee)
    workspace_page = client.get(reverse("workspace_detail", args=[world.workspace.slug]))
    assert split.mine["cluster"] in workspace_page.content.decode()
    assert split.mine["backup"] in workspace_page.content.decode()  # in its run
    audit_page = client.get(reverse("workspace_audit", args=[world.workspace.slug]))
    assert split.mine["backup"] in audit_page.content.decode()
    run_page = client.get(reverse("backup_run_detail", args=[split.run.pk])).content.decode()
    assert split.mine["backup"] in run_page
    for page, text in (
        ("cluster_backups", world.backup.name),
        ("cluster_restores", world.restore.name),
        ("cluster_etcd", world.snapshot.name),
        ("cluster_schedules", world.schedule.prefix),
    ):
        assert text in client.get(reverse(page, args=[world.cluster.name])).content.decode()


def test_it_answers_404_for_the_other_clusters_objects(world, split, login):
    for url in split.hidden_urls:
        assert login(split.viewer).get(url).status_code == 200, url
        assert login(split.grantee).get(url).status_code == 404, url


def test_it_counts_only_the_clusters_a_grantee_may_see(world, split, login):
    assert "2 clusters" in login(split.viewer).get(reverse("dashboard")).content.decode()
    assert "1 cluster<" in login(split.grantee).get(reverse("dashboard")).content.decode()
