"""Granular restore against the real clusters: three items chosen from a backup of
cluster A come back on cluster B (under a namespace unique to the test), and nothing
else of that backup does; the backup's index reads one item by a ranged read."""

from __future__ import annotations

import pytest

from backups.engine.velero import index
from backups.engine.velero.reader import find_item, resource_list
from tests.integration.test_restore_engine import (  # noqa: F401 (world is a fixture)
    backup_of,
    fill,
    live,
    mapped,
    restore_of,
    world,
)

pytestmark = pytest.mark.integration

CHOSEN = [
    ("v1/ConfigMap", "settings", "configmaps"),
    ("v1/Secret", "creds", "secrets"),
    ("apps/v1/Deployment", "web", "deployments.apps"),
]


def test_three_chosen_items_of_a_come_back_on_b_and_nothing_else(
    world,  # noqa: F811 (the fixture imported above)
    kube_a,
    fresh_namespace,
):
    ns = fresh_namespace
    fill(kube_a, ns)
    backup = backup_of(world, include_namespaces=[ns])
    provider, layout = world.provider, world.layout
    # The engine wrote the index beside the archive; an item reads through it.
    found = index.read_index(provider, layout, backup.name)
    assert found is not None and "v1/ConfigMap" in found.items
    assert find_item(provider, layout, backup.name, "v1/Secret", ns, "creds")["data"] == {
        "password": "c2VjcmV0"
    }
    listing = resource_list(provider, layout, backup.name)
    in_backup = {
        (type_name, entry.rpartition("/")[0], entry.rpartition("/")[2])
        for type_name, entries in listing.items()
        for entry in entries
    }
    chosen = [[type_name, ns, name] for type_name, name, _gr in CHOSEN]
    assert {tuple(item) for item in chosen} <= in_backup
    assert len(in_backup) > len(chosen) + 3  # there is much else to leave out

    mapping = mapped(world, [ns])
    target = mapping[ns]
    _p, preview, predicted = restore_of(
        world, backup, namespace_mapping=mapping, chosen_items=chosen, is_preview=True
    )
    assert preview.phase == "Completed", preview.error
    expected = {(gr, target, name) for _t, name, gr in CHOSEN} | {("namespaces", "", target)}
    assert set(predicted.outcomes()) == expected
    assert live(world.kube_b, "namespaces", "", target) is None  # the preview changed nothing

    _r, outcome, done = restore_of(world, backup, namespace_mapping=mapping, chosen_items=chosen)
    assert outcome.phase == "Completed", (outcome.error, done.lines)
    assert done.outcomes() == dict.fromkeys(expected, "created")
    for _type, name, gr in CHOSEN:
        assert live(world.kube_b, gr, target, name) is not None, name
    # Nothing else of the backup is on B under the new namespace (what B's own
    # controllers make in every namespace aside: its default account and CA map).
    made_by_b = {("serviceaccounts", "default"), ("configmaps", "kube-root-ca.crt")}
    gr_of = {"v1/ConfigMap": "configmaps", "v1/Secret": "secrets", "v1/Service": "services",
             "v1/ServiceAccount": "serviceaccounts", "apps/v1/Deployment": "deployments.apps",
             "demo.palette.io/v1/Widget": "widgets.demo.palette.io"}  # fmt: skip
    left_out = [
        (gr_of[type_name], name)
        for type_name, namespace, name in in_backup
        if namespace == ns and [type_name, ns, name] not in chosen and type_name in gr_of
    ]
    assert ("services", "web") in left_out and ("serviceaccounts", "robot") in left_out
    for gr, name in left_out:
        if (gr, name) not in made_by_b:
            assert live(world.kube_b, gr, target, name) is None, (gr, name)
