"""What a restore leaves to the target's control plane, and how mapped namespaces are
followed inside objects (references, ClusterRoleBinding copies), without a cluster."""

from __future__ import annotations

import json
import threading

from backups.engine import control_plane
from backups.engine.kube.discovery import ResourceType
from backups.engine.restore import bindings
from backups.engine.restore.apply import CREATED, SKIPPED_EQUAL, Applier
from backups.engine.restore.plan import PlannedItem
from backups.engine.restore.references import rewrite
from backups.engine.restore.sanitize import SanitizeOptions, sanitize
from backups.engine.restore.target import Response
from tests.unit.test_restore_plan import GR, TYPES, contents, keys, obj, plan

GR.update({
    "IPAddress": "ipaddresses.networking.k8s.io", "Lease": "leases.coordination.k8s.io",
    "ComponentStatus": "componentstatuses", "FlowSchema": "flowschemas.flowcontrol.apiserver.k8s.io",
    "CertificateSigningRequest": "certificatesigningrequests.certificates.k8s.io",
})  # fmt: skip
MAPPED = SanitizeOptions("b", "r", {"shop": "shop-copy"})


def test_control_plane_state_is_left_out_with_its_reason_unless_named():
    archive = contents(
        obj("IPAddress", "10.96.0.1", api_version="networking.k8s.io/v1"),
        obj("CertificateSigningRequest", "csr-1", api_version="certificates.k8s.io/v1"),
        obj("Lease", "kube-scheduler", "kube-system", "coordination.k8s.io/v1"),
        obj("Lease", "my-operator", "shop", "coordination.k8s.io/v1"),
        obj("FlowSchema", "global-default", api_version="flowcontrol.apiserver.k8s.io/v1",
            metadata={"annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}}),
        obj("FlowSchema", "mine", api_version="flowcontrol.apiserver.k8s.io/v1"),
    )  # fmt: skip
    result = plan(archive, cluster_resources="always")
    restored = {(gr, name) for gr, _ns, name in keys(result) if gr != "namespaces"}
    assert restored == {
        ("leases.coordination.k8s.io", "my-operator"),
        ("flowschemas.flowcontrol.apiserver.k8s.io", "mine"),
    }
    notes = " ".join(result.notes)
    for rule in (control_plane.RULES[0], *control_plane.RULES[2:4]):
        assert rule.reason in notes
    assert "FlowSchemas that the API server keeps up to date itself" in notes
    kept = plan(archive, cluster_resources="always", include_resources=["ipaddresses"])
    assert {name for _gr, _ns, name in keys(kept)} == {"10.96.0.1"}


def test_kinds_the_target_cannot_create_are_skipped_never_failed():
    types = [*TYPES, ResourceType("", "v1", "componentstatuses", "ComponentStatus", False,
                                  verbs=("get", "list"))]  # fmt: skip
    assert control_plane.not_creatable(types) == {"componentstatuses"}
    assert control_plane.reference_only_note(types) == (
        "Kept for reference only (the cluster does not create these kinds, so a restore "
        "skips them): componentstatuses."
    )
    assert control_plane.reference_only_note(TYPES) == ""  # (no verbs known: not judged)
    archive = contents(obj("ComponentStatus", "etcd-0"), obj("ConfigMap", "c", "shop"))
    from backups.engine.restore.options import build_options
    from backups.engine.restore.plan import plan_restore
    from tests.unit.test_restore_plan import restore

    options, _ = build_options(restore(cluster_resources="always"), types, set())
    result = plan_restore(archive, options)
    assert ("componentstatuses", "", "etcd-0") not in keys(result)
    assert "Left out 1 componentstatuses (the cluster does not create this kind" in " ".join(
        result.notes
    )


def test_namespace_references_follow_the_mapping_and_each_rewrite_is_reported():
    alertmanager = {
        "apiVersion": "monitoring.example.io/v1", "kind": "Prometheus",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "alertmanagers": [{"namespace": "shop", "name": "am"}, {"namespace": "infra"}],
            "ruleNamespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}},
            "podMonitorNamespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop", "x"]}]},
            "watch": {"namespaces": ["shop", "other"]},
        },
    }  # fmt: skip
    notes: list[str] = []
    body = sanitize("prometheuses.monitoring.example.io", alertmanager, MAPPED, notes)
    spec = body["spec"]
    assert [a.get("namespace") for a in spec["alertmanagers"]] == ["shop-copy", "infra"]
    assert spec["ruleNamespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "shop-copy"
    }
    assert spec["podMonitorNamespaceSelector"]["matchExpressions"][0]["values"] == [
        "shop-copy",
        "x",
    ]
    assert spec["watch"]["namespaces"] == ["shop-copy", "other"]
    assert body["metadata"]["namespace"] == "shop-copy"
    assert len(notes) == 1 and "spec.alertmanagers[0].namespace: shop -> shop-copy" in notes[0]
    assert "spec.watch.namespaces: shop -> shop-copy" in notes[0]


def test_application_data_and_unmapped_restores_are_left_alone():
    cm = {"metadata": {"name": "c", "namespace": "shop"}, "data": {"namespace": "shop"}}
    assert rewrite("configmaps", cm, {"shop": "x"}) == [] and cm["data"]["namespace"] == "shop"
    pv = {"spec": {"claimRef": {"namespace": "shop"}}}
    assert rewrite("persistentvolumes", pv, {}) == []
    assert rewrite("persistentvolumes", pv, {"shop": "x"}) == ["spec.claimRef.namespace: shop -> x"]


def binding(name="view-all", subjects=None) -> bytes:
    return json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": subjects or [{"kind": "ServiceAccount", "name": "robot", "namespace": "shop"},
                                 {"kind": "Group", "name": "ops"}],
    }).encode()  # fmt: skip


class Cluster:
    """A target that holds the original binding (and whatever the restore creates)."""

    def __init__(self):
        self.objects = {"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/view-all":
                        json.loads(binding())}  # fmt: skip
        self.requests = []

    def endpoint(self, group_resource, api_version):
        return ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                            "ClusterRoleBinding", False)  # fmt: skip

    def request(self, method, path, body=None, query=None, content_type=""):
        self.requests.append((method, path, body, query))
        if method == "POST":
            where = f"{path}/{body['metadata']['name']}"
            if where in self.objects:
                return Response(409, b'{"reason": "AlreadyExists"}')
            if not query:
                self.objects[where] = body
            return Response(201, b"{}")
        if method == "GET" and path in self.objects:
            return Response(200, json.dumps(self.objects[path]).encode())
        return Response(404, b"{}")


def restore_binding(target, dry_run=False, update=True):
    applier = Applier(target, None, workers=1, dry_run=dry_run, update=update, planned=set(),
                      stop=threading.Event())  # fmt: skip
    item = PlannedItem(bindings.CLUSTER_ROLE_BINDINGS, "", "", "view-all",
                       "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding(), MAPPED)  # fmt: skip
    return applier.apply(item)


def test_an_existing_binding_is_never_patched_its_copy_holds_the_mapped_subjects():
    target = Cluster()
    result = restore_binding(target)  # even under policy update
    assert result.outcome == CREATED
    assert (
        "view-all-shop-copy was created for the mapped subjects shop-copy/robot" in result.message
    )
    assert not any(method == "PATCH" for method, *_ in target.requests)
    original = target.objects["/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/view-all"]
    assert original["subjects"][0]["namespace"] == "shop"  # the original keeps its permissions
    copy = target.objects[
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/view-all-shop-copy"
    ]
    assert copy["subjects"] == [
        {"kind": "ServiceAccount", "name": "robot", "namespace": "shop-copy"}
    ]
    assert copy["roleRef"]["name"] == "view"
    again = restore_binding(target)
    assert (
        again.outcome == SKIPPED_EQUAL and "view-all-shop-copy exists and matches" in again.message
    )


def test_a_preview_says_which_copy_it_would_create():
    target = Cluster()
    result = restore_binding(target, dry_run=True)
    assert result.outcome == CREATED and "would be created" in result.message
    assert "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/view-all-shop-copy" not in (
        target.objects
    )


def test_a_preview_predicts_the_default_service_account_of_a_new_namespace_exists():
    applier = Applier(Cluster(), None, workers=1, dry_run=True, update=False, planned=set(),
                      stop=threading.Event())  # fmt: skip
    applier.pending_namespaces.add("shop-copy")
    item = PlannedItem("serviceaccounts", "shop", "shop-copy", "default", "v1", "ServiceAccount",
                       b"{}", MAPPED)  # fmt: skip
    result = applier.apply(item)
    assert result.outcome == SKIPPED_EQUAL and "made by the cluster" in result.message


def test_copy_names_fit_a_name():
    subjects = [{"namespace": "b" * 20}]
    assert len(bindings.copy_name("a" * 250, subjects)) == 253


def test_a_preview_into_a_new_namespace_still_lists_what_the_restore_changes():
    applier = Applier(Cluster(), None, workers=1, dry_run=True, update=False, planned=set(),
                      stop=threading.Event())  # fmt: skip
    applier.pending_namespaces.add("shop-copy")
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
           "spec": {"affinity": {"namespaces": ["shop"]}}}  # fmt: skip
    item = PlannedItem("pods", "shop", "shop-copy", "p", "v1", "Pod", json.dumps(pod).encode(),
                       MAPPED)  # fmt: skip
    result = applier.apply(item)
    assert result.outcome == CREATED and "Would be created" in result.message
    assert "spec.affinity.namespaces: shop -> shop-copy" in result.message
