"""Retention keeps exactly N completed snapshots per cluster and location, objects first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backups.engine.storage.base import AccessDenied
from backups.etcd_retention import apply_retention
from backups.models import EtcdSnapshot, Status
from tests import factories

pytestmark = pytest.mark.django_db


class MemoryProvider:
    """Just the calls retention makes: delete (and a record of the keys)."""

    def __init__(self, keys=(), refuse=()):
        self.keys = set(keys)
        self.refuse = set(refuse)

    def delete(self, key):
        if key in self.refuse:
            raise AccessDenied("Access denied to the bucket")
        self.keys.discard(key)


@pytest.fixture
def world(db):
    ws = factories.workspace()
    return ws, factories.cluster(ws, "prod"), factories.location(ws, "store")


def _take(cluster, location, n, *, status=Status.COMPLETED, minutes_ago=None):
    name = f"{cluster.name}-etcd-{n:03d}"
    snap = EtcdSnapshot.objects.create(
        name=name,
        workspace=cluster.workspace,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        status=status,
        object_key=f"x-etcd/{cluster.name}/{name}.db",
    )
    # Older snapshots first: n minutes after a fixed start.
    created = timezone.now() - timedelta(
        minutes=minutes_ago if minutes_ago is not None else 100 - n
    )
    EtcdSnapshot.objects.filter(pk=snap.pk).update(created_at=created)
    return snap


def test_keeps_exactly_n_deleting_the_oldest_objects_then_rows(world):
    _, cluster, location = world
    snaps = [_take(cluster, location, n) for n in range(1, 8)]
    provider = MemoryProvider(s.object_key for s in snaps)
    deleted = apply_retention(cluster, location, 3, provider)
    assert deleted == [s.name for s in snaps[:4]]  # oldest first
    left = EtcdSnapshot.objects.filter(cluster=cluster).order_by("created_at")
    assert [s.name for s in left] == [s.name for s in snaps[4:]]
    assert provider.keys == {s.object_key for s in snaps[4:]}
    assert apply_retention(cluster, location, 3, provider) == []  # nothing more to do


def test_only_completed_snapshots_of_that_cluster_and_location_count(world):
    ws, cluster, location = world
    other_cluster = factories.cluster(ws, "other")
    other_location = factories.location(ws, "elsewhere")
    old = [_take(cluster, location, n) for n in range(1, 4)]
    failed = _take(cluster, location, 4, status=Status.FAILED)
    running = _take(cluster, location, 5, status=Status.RUNNING)
    foreign = [_take(other_cluster, location, 6), _take(cluster, other_location, 7)]
    provider = MemoryProvider()
    assert apply_retention(cluster, location, 2, provider) == [old[0].name]
    remaining = set(EtcdSnapshot.objects.values_list("name", flat=True))
    assert {failed.name, running.name, *(s.name for s in foreign)} <= remaining


def test_a_snapshot_whose_object_cannot_be_deleted_keeps_its_row(world):
    _, cluster, location = world
    snaps = [_take(cluster, location, n) for n in range(1, 5)]
    provider = MemoryProvider((s.object_key for s in snaps), refuse={snaps[0].object_key})
    assert apply_retention(cluster, location, 2, provider) == [snaps[1].name]
    assert EtcdSnapshot.objects.filter(pk=snaps[0].pk).exists()  # retried next time


def test_keep_below_one_never_deletes_the_newest(world):
    _, cluster, location = world
    snaps = [_take(cluster, location, n) for n in range(1, 4)]
    assert apply_retention(cluster, location, 0, MemoryProvider()) == [s.name for s in snaps[:2]]
    assert list(EtcdSnapshot.objects.values_list("name", flat=True)) == [snaps[2].name]
