"""Restore options against the real clusters: node ports, volumes, selectors, resource
filters, what is never restored, and a definition that the target does not know yet."""

from __future__ import annotations

import time

import pytest

from backups.engine.restore.target import Target
from devenv.demo_objects import STORAGE_CLASS
from devenv.images import BUSYBOX_IMAGE
from devenv.seed import create
from devenv.testing import unique, wait_for
from tests.integration.test_restore_engine import backup_of, live, mapped, restore_of
from tests.integration.test_restore_engine import world as world  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration
MERGE = "application/merge-patch+json"


def namespaced(rec) -> dict[tuple[str, str], str]:
    return {(i.resource, i.name): i.outcome for i in rec.items if i.namespace}


def test_node_ports_are_given_anew_unless_preserved(world):
    backup = backup_of(world, include_namespaces=["shop"])
    mapping = mapped(world, ["shop"])
    target_ns = mapping["shop"]
    _r, outcome, rec = restore_of(
        world, backup, namespace_mapping=mapping, include_resources=["services"]
    )
    assert outcome.phase == "Completed"
    assert set(namespaced(rec)) == {("services", "frontend"), ("services", "cart"),
                                    ("services", "catalog")}  # fmt: skip
    port = live(world.kube_b, "services", target_ns, "frontend")["spec"]["ports"][0]["nodePort"]
    assert port and port != 30080  # B's own shop/frontend holds 30080

    other = mapped(world, ["shop"])
    _r, outcome, rec = restore_of(
        world, backup, namespace_mapping=other, include_resources=["services"],
        preserve_node_ports=True,
    )  # fmt: skip
    assert outcome.phase == "PartiallyFailed" and outcome.failed == 1
    failed = rec.item("services", other["shop"], "frontend")
    assert failed.outcome == "failed" and "30080" in failed.message
    assert "already allocated" in failed.message and "(422" in failed.message
    assert rec.item("services", other["shop"], "cart").outcome == "created"


def test_volumes_are_restored_only_when_asked(world, kube_a, fresh_namespace):
    ns, pv = fresh_namespace, f"{fresh_namespace}-pv"
    world.made.append((world.kube_a, f"/api/v1/persistentvolumes/{pv}"))
    world.made.append((world.kube_a, f"/api/v1/namespaces/{ns}"))  # to release its claim
    create(kube_a, {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
                    "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                             "persistentVolumeReclaimPolicy": "Retain",
                             "storageClassName": STORAGE_CLASS, "hostPath": {"path": f"/tmp/{ns}"},
                             "claimRef": {"namespace": ns, "name": "data"}}})  # fmt: skip
    create(kube_a, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "namespace": ns},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
                             "volumeName": pv, "resources": {"requests": {"storage": "1Gi"}}}})  # fmt: skip
    backup = backup_of(world, include_namespaces=[ns])

    mapping = mapped(world, [ns])
    _r, outcome, rec = restore_of(world, backup, namespace_mapping=mapping)
    assert outcome.phase == "Completed"
    assert not any(i.resource == "persistentvolumes" for i in rec.items)
    assert live(world.kube_b, "persistentvolumes", "", pv) is None

    world.made.append((world.kube_b, f"/api/v1/persistentvolumes/{pv}"))
    mapping = mapped(world, [ns])
    _r, outcome, rec = restore_of(world, backup, namespace_mapping=mapping, restore_pvs=True)
    assert outcome.phase == "Completed"
    assert rec.item("persistentvolumes", "", pv).outcome == "created"
    volume = live(world.kube_b, "persistentvolumes", "", pv)
    assert volume["spec"]["claimRef"]["namespace"] == mapping[ns]
    deadline = time.monotonic() + 30  # B's volume controller binds the pair again
    while time.monotonic() < deadline:
        claim = live(world.kube_b, "persistentvolumeclaims", mapping[ns], "data")
        if (claim.get("status") or {}).get("phase") == "Bound":
            break
        time.sleep(0.5)
    assert claim["status"]["phase"] == "Bound"


def test_the_label_selector_and_resource_filters_choose_items(world):
    backup = backup_of(world, include_namespaces=["shop"])
    mapping = mapped(world, ["shop"])
    _r, outcome, rec = restore_of(
        world, backup, namespace_mapping=mapping, label_selector="tier=backend"
    )
    assert outcome.phase == "Completed"
    names = {name for _gr, name in namespaced(rec)}
    assert names and all(n.startswith(("cart", "catalog")) for n in names), names
    assert rec.item("namespaces", "", mapping["shop"]).outcome == "created"
    for gr, name in namespaced(rec):
        obj = live(world.kube_b, gr, mapping["shop"], name)
        assert obj["metadata"]["labels"]["tier"] == "backend"

    mapping = mapped(world, ["shop"])
    _r, outcome, rec = restore_of(
        world, backup, namespace_mapping=mapping, include_resources=["configmaps", "deploy"]
    )
    assert {gr for gr, _n in namespaced(rec)} == {"configmaps", "deployments.apps"}
    mapping = mapped(world, ["shop"])
    _r, outcome, rec = restore_of(
        world, backup, namespace_mapping=mapping, exclude_resources=["pods", "replicasets"]
    )
    kinds = {gr for gr, _n in namespaced(rec)}
    assert "pods" not in kinds and "replicasets.apps" not in kinds and "services" in kinds


def test_finished_pods_are_not_restored(world, fresh_namespace):
    ns = fresh_namespace
    target = Target(world.kube_a, None)
    # Real pods on cluster A's node: "done" runs to its end, "waiting" keeps running.
    for name, command in (("done", ["true"]), ("waiting", ["sleep", "3600"])):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "c", "image": BUSYBOX_IMAGE,
                                        "imagePullPolicy": "Never", "command": command}]}}  # fmt: skip
        assert target.request("POST", f"/api/v1/namespaces/{ns}/pods", pod).ok
    wait_for(
        lambda: target.request("GET", f"/api/v1/namespaces/{ns}/pods/done").doc()
        .get("status", {}).get("phase") == "Succeeded",
        timeout=60, what="the finished pod to be Succeeded",
    )  # fmt: skip
    backup = backup_of(world, include_namespaces=[ns])
    mapping = mapped(world, [ns])
    _r, outcome, rec = restore_of(world, backup, namespace_mapping=mapping)
    assert outcome.phase == "Completed"
    pods = {name for gr, name in namespaced(rec) if gr == "pods"}
    assert pods == {"waiting"}
    assert any("Left out 1 pods that had finished" in line for line in rec.lines)


def test_a_definition_new_to_the_target_is_established_before_its_resources(world, fresh_namespace):
    group = f"{unique('t')}.palette.io".replace("-", "")
    crd_name = f"gadgets.{group}"
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd_name}"
    world.made += [(world.kube_a, path), (world.kube_b, path)]
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }  # fmt: skip
    source = Target(world.kube_a, None)
    assert source.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).ok
    ns = fresh_namespace
    collection = f"/apis/{group}/v1/namespaces/{ns}/gadgets"
    deadline = time.monotonic() + 30
    while True:  # the new type's endpoint takes a moment
        gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1"},
                  "spec": {"size": 3}}  # fmt: skip
        response = source.request("POST", collection, gadget)
        if response.ok or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert response.ok, response.describe()
    backup = backup_of(world, include_namespaces=[ns])

    mapping = mapped(world, [ns])
    _r, outcome, rec = restore_of(world, backup, namespace_mapping=mapping, is_preview=True)
    assert outcome.phase == "Completed"
    predicted = rec.item(f"gadgets.{group}", mapping[ns], "g1")
    assert predicted.outcome == "created" and "created by this restore" in predicted.message

    _r, outcome, rec = restore_of(world, backup, namespace_mapping=mapping)
    assert outcome.phase == "Completed", (outcome.error, rec.lines)
    assert rec.item("customresourcedefinitions.apiextensions.k8s.io", "", crd_name).outcome == (
        "created"
    )
    assert rec.item(f"gadgets.{group}", mapping[ns], "g1").outcome == "created"
    restored = Target(world.kube_b, None).request(
        "GET", f"/apis/{group}/v1/namespaces/{mapping[ns]}/gadgets/g1"
    )
    assert restored.ok and restored.doc()["spec"] == {"size": 3}
