"""Planning a restore: filters, cluster-scoped items, mapping, order, what is never restored."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from backups.engine.filters import FilterError
from backups.engine.inputs import ClusterConnection, RestoreRequest, RestoreSpec, Store
from backups.engine.kube.discovery import ResourceType
from backups.engine.restore.archive import Contents
from backups.engine.restore.options import build_options, resolve_names, selector_matches
from backups.engine.restore.plan import CRD, PRIORITIES, order_key, plan_restore

GR = {
    "Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets", "Pod": "pods",
    "Service": "services", "ServiceAccount": "serviceaccounts", "Node": "nodes",
    "Event": "events", "PersistentVolume": "persistentvolumes",
    "PersistentVolumeClaim": "persistentvolumeclaims", "Deployment": "deployments.apps",
    "Job": "jobs.batch", "Widget": "widgets.demo.io", "CustomResourceDefinition": CRD,
    "ClusterRole": "clusterroles.rbac.authorization.k8s.io", "Endpoints": "endpoints",
    "StorageClass": "storageclasses.storage.k8s.io",
    "EndpointSlice": "endpointslices.discovery.k8s.io",
}  # fmt: skip
TYPES = [
    ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",)),
    ResourceType("", "v1", "secrets", "Secret", True, "secret"),
    ResourceType("", "v1", "pods", "Pod", True, "pod", ("po",)),
    ResourceType("apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",)),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False, "", ("pv",)),
]


def obj(kind, name, namespace="", api_version="v1", **fields):
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    meta.update(fields.pop("metadata", {}))
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **fields}


def contents(*objects) -> Contents:
    found = Contents(format_version="1.1.0")
    for o in objects:
        key = (GR[o["kind"]], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        found.items[key] = json.dumps(o).encode()
    return found


def restore(**spec) -> RestoreRequest:
    return RestoreRequest(
        name="r1",
        backup_name="b1",
        cluster=ClusterConnection("target", kubeconfig=""),
        store=Store(provider=None, name="loc"),
        spec=replace(RestoreSpec(), **spec),
    )


def plan(archive: Contents, **fields):
    options, warnings = build_options(restore(**fields), TYPES, archive.group_resources())
    result = plan_restore(archive, options)
    result.warnings += warnings
    return result


def keys(result) -> set[tuple[str, str, str]]:
    return {(g.group_resource, i.namespace, i.name) for g in result.groups for i in g.items}


MIX = contents(
    obj("Namespace", "shop", metadata={"labels": {"team": "a"}}),
    obj("Namespace", "billing"),
    obj("Namespace", "empty"),
    obj("ConfigMap", "cfg", "shop", metadata={"labels": {"tier": "web"}}),
    obj("ConfigMap", "kube-root-ca.crt", "shop"),
    obj("Secret", "s", "billing", metadata={"labels": {"tier": "db"}}),
    obj("Pod", "running", "shop", status={"phase": "Running"}),
    obj("Pod", "done", "shop", status={"phase": "Succeeded"}),
    obj("Pod", "crashed", "shop", status={"phase": "Failed"}),
    obj("Job", "finished", "shop", "batch/v1", status={"completionTime": "2026-01-01T00:00:00Z"}),
    obj("Job", "running", "shop", "batch/v1", status={"active": 1}),
    obj("Event", "e1", "shop"),
    obj("Node", "n1"),
    obj("Endpoints", "cfg", "shop",
        metadata={"labels": {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}}),
    obj("Endpoints", "manual", "shop"),
    obj("EndpointSlice", "cfg-x1", "shop", "discovery.k8s.io/v1",
        metadata={"labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}}),
    obj("Widget", "w", "shop", "demo.io/v1"),
    obj("CustomResourceDefinition", "widgets.demo.io", api_version="apiextensions.k8s.io/v1"),
    obj("ClusterRole", "reader", api_version="rbac.authorization.k8s.io/v1"),
    obj("StorageClass", "fast", api_version="storage.k8s.io/v1"),
    obj("PersistentVolumeClaim", "data", "shop", spec={"volumeName": "pv-shop"}),
    obj("PersistentVolume", "pv-shop", spec={"persistentVolumeReclaimPolicy": "Retain",
                                             "claimRef": {"namespace": "shop", "name": "data"}}),
    obj("PersistentVolume", "pv-other", spec={"persistentVolumeReclaimPolicy": "Retain"}),
)  # fmt: skip


def test_everything_restores_all_but_the_never_restored_and_what_controllers_make():
    result = plan(MIX)
    assert keys(result) == {
        ("namespaces", "", "shop"), ("namespaces", "", "billing"), ("namespaces", "", "empty"),
        ("configmaps", "shop", "cfg"), ("secrets", "billing", "s"), ("pods", "shop", "running"),
        ("jobs.batch", "shop", "running"), ("endpoints", "shop", "manual"),
        ("widgets.demo.io", "shop", "w"), (CRD, "", "widgets.demo.io"),
        ("clusterroles.rbac.authorization.k8s.io", "", "reader"),
        ("storageclasses.storage.k8s.io", "", "fast"), ("persistentvolumeclaims", "shop", "data"),
    }  # fmt: skip
    notes = " ".join(result.notes)
    for reason in ("2 pods that had finished", "1 Jobs that had completed", "events (never",
                   "nodes (never", "kube-root-ca.crt", "endpoints managed by",
                   "endpointslices.discovery.k8s.io managed by"):  # fmt: skip
        assert reason in notes, reason


def test_volumes_come_only_when_asked_and_delete_policy_ones_are_provisioned_anew():
    with_pvs = keys(plan(MIX, restore_pvs=True))
    assert {("persistentvolumes", "", "pv-shop"), ("persistentvolumes", "", "pv-other")} <= with_pvs
    archive = contents(
        obj("PersistentVolumeClaim", "data", "shop", spec={"volumeName": "pv-del"}),
        obj("PersistentVolume", "pv-del", spec={"persistentVolumeReclaimPolicy": "Delete"}),
    )
    result = plan(archive, restore_pvs=True)
    assert ("persistentvolumes", "", "pv-del") not in keys(result)
    claim = result.group("persistentvolumeclaims").items[0]
    assert "volumeName" not in claim.body()["spec"]
    assert "reclaim policy Delete" in " ".join(result.notes)
    # without restore_pvs the claim keeps its volume name (as Velero)
    claim = plan(archive).group("persistentvolumeclaims").items[0]
    assert claim.body()["spec"]["volumeName"] == "pv-del"


def test_auto_with_a_namespace_filter_brings_only_what_the_namespace_needs():
    result = keys(plan(MIX, include_namespaces=["shop"], restore_pvs=True))
    cluster = {(gr, name) for gr, ns, name in result if not ns}
    # the namespace, the definition of its custom resource, its claim's volume
    assert cluster == {("namespaces", "shop"), (CRD, "widgets.demo.io"),
                       ("persistentvolumes", "pv-shop")}  # fmt: skip
    assert not any(ns == "billing" for _gr, ns, _n in result)
    without_pvs = keys(plan(MIX, include_namespaces=["shop"]))
    assert ("persistentvolumes", "", "pv-shop") not in without_pvs
    never = keys(plan(MIX, include_namespaces=["shop"], cluster_resources="never"))
    assert {(gr, n) for gr, ns, n in never if not ns} == {("namespaces", "shop")}
    always = keys(plan(MIX, include_namespaces=["shop"], cluster_resources="always"))
    assert ("storageclasses.storage.k8s.io", "", "fast") in always
    assert ("persistentvolumes", "", "pv-other") not in always  # restore_pvs is off


def test_namespace_filters_take_globs_and_excludes_win():
    result = keys(plan(MIX, include_namespaces=["*"], exclude_namespaces=["shop"]))
    assert not any(ns == "shop" or name == "shop" for _gr, ns, name in result)
    assert ("secrets", "billing", "s") in result and ("namespaces", "", "empty") in result
    # an exclude list is a filter: cluster-scoped items come only as needed
    assert ("storageclasses.storage.k8s.io", "", "fast") not in result
    assert keys(plan(MIX, include_namespaces=["bill*"])) == {
        ("namespaces", "", "billing"),
        ("secrets", "billing", "s"),
    }


def test_mapping_renames_namespaces_and_moves_their_objects():
    result = plan(MIX, include_namespaces=["shop"], namespace_mapping={"shop": "shop-copy"},
                  restore_pvs=True)  # fmt: skip
    assert {ns for _gr, ns, _n in keys(result) if ns} == {"shop-copy"}
    namespace = result.group("namespaces").items[0]
    assert namespace.name == "shop-copy" and namespace.body()["metadata"]["name"] == "shop-copy"
    assert namespace.body()["metadata"]["labels"]["team"] == "a"
    pv = result.group("persistentvolumes").items[0]
    assert pv.body()["spec"]["claimRef"]["namespace"] == "shop-copy"
    cfg = result.group("configmaps").items[0]
    assert cfg.source_namespace == "shop" and cfg.body()["metadata"]["namespace"] == "shop-copy"


def test_resource_filters_resolve_names_as_users_type_them():
    result = keys(plan(MIX, include_resources=["cm", "widgets"], include_namespaces=["shop"]))
    assert {gr for gr, ns, _n in result if ns} == {"configmaps", "widgets.demo.io"}
    # namespaces of restored items are created whatever the resource filter
    assert ("namespaces", "", "shop") in result
    result = keys(plan(MIX, exclude_resources=["pods", "Secret"]))
    assert not any(gr in ("pods", "secrets") for gr, _ns, _n in result)
    result = plan(MIX, include_resources=["nonsense"])
    assert "'nonsense' matches no resource type" in result.warnings[0]
    assert resolve_names(["*"], TYPES, set()) == (None, [])


def test_the_label_selector_filters_items_but_not_the_namespaces_they_need():
    result = keys(plan(MIX, label_selector="tier in (web,db)"))
    namespaced = {(gr, ns, n) for gr, ns, n in result if ns}
    assert namespaced == {("configmaps", "shop", "cfg"), ("secrets", "billing", "s")}
    assert ("namespaces", "", "shop") in result and ("namespaces", "", "billing") in result
    assert ("namespaces", "", "empty") not in result  # empty and not selected
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "NotIn",
                                                   "values": ["x"]}]}, {})  # fmt: skip
    assert not selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {})
    assert selector_matches({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"})


def test_bad_options_are_refused_with_a_reason():
    with pytest.raises(FilterError, match="label selector"):
        plan(MIX, label_selector="a=(b")
    with pytest.raises(FilterError, match="names no valid namespace"):
        plan(MIX, namespace_mapping={"shop": "Shop_Copy"})


def test_groups_follow_velero_priorities_then_the_alphabet():
    result = plan(MIX, restore_pvs=True)
    order = [g.group_resource for g in result.groups]
    assert order[:2] == [CRD, "namespaces"]
    prioritized = [gr for gr in order if gr in PRIORITIES]
    assert prioritized == sorted(prioritized, key=PRIORITIES.index)
    rest = [gr for gr in order if gr not in PRIORITIES]
    assert rest == sorted(rest) and order.index("endpoints") < order.index(rest[0])
    assert order_key("clusters.cluster.x-k8s.io") > order_key("zebras.example.com")
    assert result.total == sum(len(g.items) for g in result.groups)


# --- granular restore: chosen items ------------------------------------------------------


def test_chosen_items_restore_exactly_those_with_their_namespaces():
    chosen = (("v1/ConfigMap", "shop", "cfg"), ("v1/Secret", "billing", "s"),
              ("apps/v1/Deployment", "shop", "nope"))  # fmt: skip
    result = keys(plan(MIX, chosen_items=chosen, namespace_mapping={"shop": "shop-2"}))
    assert result == {
        ("configmaps", "shop-2", "cfg"), ("secrets", "billing", "s"),
        ("namespaces", "", "shop-2"), ("namespaces", "", "billing"),
    }  # fmt: skip


def test_a_chosen_item_is_matched_by_its_type_not_only_its_name():
    # the Endpoints "cfg" in shop has the same namespace and name as the ConfigMap
    result = keys(plan(MIX, chosen_items=(("v1/Endpoints", "shop", "manual"),)))
    assert result == {("endpoints", "shop", "manual"), ("namespaces", "", "shop")}
    assert keys(plan(MIX, chosen_items=(("v1/Secret", "shop", "cfg"),))) == set()


def test_chosen_cluster_items_and_custom_resources_bring_what_they_need():
    chosen = (("demo.io/v1/Widget", "shop", "w"),
              ("rbac.authorization.k8s.io/v1/ClusterRole", "", "reader"),
              ("v1/Namespace", "", "empty"))  # fmt: skip
    result = keys(plan(MIX, chosen_items=chosen))
    assert result == {
        ("widgets.demo.io", "shop", "w"), (CRD, "", "widgets.demo.io"),
        ("clusterroles.rbac.authorization.k8s.io", "", "reader"),
        ("namespaces", "", "shop"), ("namespaces", "", "empty"),
    }  # fmt: skip


def test_chosen_items_still_skip_what_is_never_restored():
    chosen = (("v1/Pod", "shop", "done"), ("v1/Node", "", "n1"), ("v1/Pod", "shop", "running"))
    result = plan(MIX, chosen_items=chosen)
    assert keys(result) == {("pods", "shop", "running"), ("namespaces", "", "shop")}
