"""A CRD-heavy operator install, backed up from cluster A with cluster resources ``always``
and restored into cluster B: Completed, no failures, every object equal, real permissions.

The test writes the operator's manifests itself: 4 definitions of a group of its own (two
of them over 256 KB, one cluster-scoped), cluster RBAC for the operator's account, a Role,
and 120 custom resources. Then a second, mapped restore into another namespace of B with
a resource modifier set: the existing ClusterRoleBinding gets a copy for the mapped
account (the original keeps its permissions), the preview lists each rewrite and modifier
as the restore applies them.

Both clusters are shared with other tests running at the same time. ``always`` backs up
every cluster-scoped object of A, other tests' objects too; restoring all of them into
B would create (and then have to delete) objects that other tests own or are about to
restore themselves. So every object of the install carries a label unique to the test,
and the restores that write select it; what ``always`` does with the rest of A's
cluster (read-only kinds, the control plane's state) is checked on a preview of the
whole backup, which changes nothing. Everything the test created on A and B is deleted
afterwards. Webhook configurations and APIServices are left out of that preview as a
real restore into a shared cluster would leave them out: copied without their services,
they would break writes and discovery on B.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from backups.engine.kube.discovery import discover
from backups.engine.restore import bindings
from backups.engine.restore.sanitize import SanitizeOptions, differences, sanitize
from backups.engine.restore.target import Target
from devenv.seed import create
from devenv.testing import unique, wait_for
from tests.integration.test_restore_engine import (
    CRB,
    CRD,
    archive_items,
    backup_of,
    live,
    mapped,
    restore_of,
)
from tests.integration.test_restore_engine import world as world  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

KINDS = (  # (kind, namespaced, properties in the schema: 2,400 make a definition > 256 KB)
    ("Gadget", True, 2400),
    ("Sprocket", True, 2400),
    ("Widget", True, 20),
    ("Fleet", False, 20),
)
PER_KIND = {"Gadget": 35, "Sprocket": 35, "Widget": 35, "Fleet": 15}  # 120
LABEL = "palette.io/operator-test"  # its value: the test's namespace, unique
SKIPPED_ON_PURPOSE = [
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "apiservices",
]


def definition(group: str, kind: str, namespaced: bool, properties: int, ns: str) -> dict:
    plural = kind.lower() + "s"
    fields = {
        f"setting{n:04d}": {
            "type": "string",
            "description": f"Setting {n} of the operator; generated to make a large schema. " * 2,
        }
        for n in range(properties)
    }
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": fields,
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": {LABEL: ns}},
        "spec": {
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],  # fmt: skip
        },
    }


def rbac(group: str, ns: str) -> list[dict]:
    rbac_v1 = "rbac.authorization.k8s.io/v1"
    name = f"{ns}-operator"
    labels = {LABEL: ns}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "operator", "namespace": ns, "labels": labels}},
        {"apiVersion": rbac_v1, "kind": "ClusterRole", "metadata": {"name": name, "labels": labels},
         "rules": [{"apiGroups": [group], "resources": ["*"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": rbac_v1, "kind": "ClusterRoleBinding",
         "metadata": {"name": name, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}]},
        {"apiVersion": rbac_v1, "kind": "Role",
         "metadata": {"name": "config", "namespace": ns, "labels": labels},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}]},
        {"apiVersion": rbac_v1, "kind": "RoleBinding",
         "metadata": {"name": "config", "namespace": ns, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "config"},
         "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns}]},
    ]  # fmt: skip


def custom_resources(group: str, ns: str) -> list[dict]:
    found = []
    for kind, namespaced, _p in KINDS:
        for n in range(PER_KIND[kind]):
            meta = {"name": f"{ns}-{kind.lower()}-{n:03d}" if not namespaced else f"item-{n:03d}",
                    "labels": {"app": "operator", LABEL: ns},
                    "annotations": {"palette.io/drop": "x"}}  # fmt: skip
            if namespaced:
                meta["namespace"] = ns
            found.append({
                "apiVersion": f"{group}/v1", "kind": kind, "metadata": meta,
                "spec": {"size": "small", "setting0001": f"value {n}",
                         "alertmanagers": [{"namespace": ns, "name": "main"}],
                         "ruleNamespaceSelector": {
                             "matchLabels": {"kubernetes.io/metadata.name": ns}}},
            })  # fmt: skip
    return found


def create_custom(api: client.ApiClient, obj: dict) -> None:
    """Create a custom resource with the client's CustomObjectsApi (``devenv.seed.create``
    knows only the seed's kinds), retried while its new definition is not served yet."""
    custom = client.CustomObjectsApi(api)
    group, version = obj["apiVersion"].split("/")
    plural, meta = obj["kind"].lower() + "s", obj["metadata"]

    def created() -> bool:
        try:
            if meta.get("namespace"):
                custom.create_namespaced_custom_object(
                    group, version, meta["namespace"], plural, obj
                )
            else:
                custom.create_cluster_custom_object(group, version, plural, obj)
        except ApiException as exc:
            if exc.status == 404:  # "the server could not find the requested resource"
                return False
            raise
        return True

    wait_for(created, 30, f"{obj['kind']} {meta['name']} to be created")


def allowed(kube, user_ns: str, **attributes) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{user_ns}:operator",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{user_ns}"],
            "resourceAttributes": attributes,
        },
    }
    answer = Target(kube, None).request(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
    )
    assert answer.ok, answer.describe()
    return bool((answer.doc().get("status") or {}).get("allowed"))


def delete_created_cluster_objects(world, rec) -> None:
    """What a restore created on B outside namespaces is the test's to remove."""
    types = discover(world.kube_b)
    for item in rec.items:
        if item.outcome == "created" and not item.namespace and item.resource != "namespaces":
            rt = types.find(item.resource)
            if rt is not None:
                world.made.append((world.kube_b, f"{rt.list_path()}/{item.name}"))


def ours_only(ns: str, **options) -> dict:
    """A restore of the install only: with ``always``, the rest of A's cluster-scoped
    objects (other tests' among them) stay out of shared B."""
    return dict(options, label_selector=f"{LABEL}={ns}")


@pytest.fixture
def operator(world, kube_a, fresh_namespace):
    """The operator installed in a fresh namespace of A: (group, namespace, definitions).
    Its definitions are deleted afterwards on A and B (their custom resources with them),
    and its cluster RBAC on A."""
    group, ns = f"{unique('op')}.example.palette.io", fresh_namespace
    crds = [definition(group, kind, namespaced, props, ns) for kind, namespaced, props in KINDS]
    for crd in crds:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
        world.made += [(world.kube_a, path), (world.kube_b, path)]
        assert create(kube_a, crd) == "created"
    for obj in rbac(group, ns):
        if "namespace" not in obj["metadata"]:
            plural = obj["kind"].lower() + "s"
            world.made.append((world.kube_a, f"/apis/rbac.authorization.k8s.io/v1/{plural}/{obj['metadata']['name']}"))  # fmt: skip
        assert create(kube_a, obj) == "created"
    target = Target(world.kube_a, None)
    for crd in crds:
        name = crd["metadata"]["name"]
        wait_for(lambda n=name: any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in (target.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{n}")
                      .doc().get("status") or {}).get("conditions") or ()
        ), 60, f"{name} Established")  # fmt: skip
    for obj in custom_resources(group, ns):
        create_custom(kube_a, obj)
    return group, ns, crds


def test_an_operator_install_restores_clean_into_another_cluster(world, operator):
    group, ns, crds = operator
    assert sum(len(json.dumps(c)) > 256 * 1024 for c in crds) == 2
    backup = backup_of(world, include_namespaces=[ns], cluster_resources="always")
    archived = archive_items(world, backup)
    ours = {key: obj for key, obj in archived.items()
            if (obj.get("metadata") or {}).get("labels", {}).get(LABEL) == ns}  # fmt: skip
    assert sum(1 for key in ours if key[0].endswith(group)) == 120
    assert len(ours) == 120 + len(crds) + len(rbac(group, ns))
    world.made.append((world.kube_b, f"/api/v1/namespaces/{ns}"))

    # What "always" does with all of A's cluster, predicted without changing B: kinds B
    # cannot create and the control plane's own state are skipped, with reasons.
    whole = dict(include_namespaces=[ns], cluster_resources="always",
                 exclude_resources=SKIPPED_ON_PURPOSE)  # fmt: skip
    _p, preview, predicted = restore_of(world, backup, is_preview=True, **whole)
    failures = [i for i in predicted.items if i.outcome == "failed"]
    # Only race allowed: another test's cluster-wide object, on A at backup time, being
    # deleted on B by that test now. Nothing of the install, and no false failure.
    races = [i for i in failures if (i.resource, i.namespace, i.name) not in ours
             and i.message.startswith("It exists and is being deleted")]  # fmt: skip
    assert [i for i in failures if i not in races] == [], (failures, preview.error)
    assert preview.phase == ("PartiallyFailed" if races else "Completed"), preview.error
    assert live(world.kube_b, "namespaces", "", ns) is None  # a preview changes nothing
    log = "\n".join(predicted.lines)
    b_types = discover(world.kube_b).types
    read_only = [t.group_resource for t in b_types if t.verbs and "create" not in t.verbs]
    archived_kinds = {key[0] for key in archived}
    assert set(read_only) & archived_kinds  # componentstatuses, at least
    for gr in set(read_only) & archived_kinds:
        assert f"{gr} (the cluster does not create this kind" in log, gr
        assert not any(i.resource == gr for i in predicted.items), gr
    if "ipaddresses.networking.k8s.io" in archived_kinds:
        assert "IPAddresses (the API server's record of allocated Service IPs)" in log
        assert not any(i.resource == "ipaddresses.networking.k8s.io" for i in predicted.items)
    assert "Left out" in log

    restore, outcome, rec = restore_of(world, backup, **ours_only(ns, **whole))
    delete_created_cluster_objects(world, rec)
    failures = [(i.resource, i.name, i.message) for i in rec.items if i.outcome == "failed"]
    assert outcome.phase == "Completed" and outcome.failed == 0, (failures, outcome.error)

    # Every object of the operator is on B, equal to A's after the restore's stripping.
    options = SanitizeOptions(backup.name, restore.name)
    outcomes = rec.outcomes()
    assert set(outcomes) == {*ours, ("namespaces", "", ns)}
    assert set(outcomes.values()) == {"created"}
    for (gr, obj_ns, name), obj in ours.items():
        on_b = live(world.kube_b, gr, obj_ns, name)
        assert on_b is not None, (gr, obj_ns, name)
        assert differences(gr, sanitize(gr, json.loads(json.dumps(obj)), options), on_b) == [], (
            gr, name,
        )  # fmt: skip
    big = [c["metadata"]["name"] for c in crds[:2]]
    assert all(outcomes[(CRD, "", name)] == "created" for name in big)

    # Real permissions on B, asked of B's authorizer.
    plural = "gadgets"
    assert allowed(world.kube_b, ns, group=group, resource=plural, verb="list")
    assert allowed(world.kube_b, ns, group=group, resource="fleets", verb="get")
    assert allowed(world.kube_b, ns, resource="configmaps", verb="create", namespace=ns)
    assert not allowed(world.kube_b, ns, resource="configmaps", verb="create", namespace="default")
    assert not allowed(world.kube_b, ns, group=group, resource=plural, verb="delete")


MODIFIERS = """version: v1
resourceModifierRules:
- conditions:
    groupResource: "gadgets.*"
    namespaces: [{ns}]
    resourceNameRegex: "^item-00"
  patches:
  - operation: replace
    path: /spec/size
    value: large
- conditions:
    groupResource: "gadgets.*"
    namespaces: [{ns}]
    resourceNameRegex: "^item-00"
  mergePatches:
  - patchData: '{{"metadata": {{"annotations": {{"palette.io/drop": null}}}}}}'
"""


def test_a_mapped_restore_copies_existing_bindings_and_applies_modifiers_as_previewed(
    world, operator
):
    group, ns, _crds = operator
    backup = backup_of(world, include_namespaces=[ns], cluster_resources="always")
    world.made.append((world.kube_b, f"/api/v1/namespaces/{ns}"))
    # The install restored once into B as it was: its ClusterRoleBinding exists there.
    _r, first, rec = restore_of(world, backup, **ours_only(ns, include_namespaces=[ns],
                                cluster_resources="always"))  # fmt: skip
    delete_created_cluster_objects(world, rec)
    assert first.phase == "Completed" and first.failed == 0, first.error
    assert rec.item(CRB, "", f"{ns}-operator").outcome == "created"

    mapping = mapped(world, [ns])
    copy = bindings.copy_name(f"{ns}-operator", [{"namespace": mapping[ns]}])
    world.made.append((world.kube_b, f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{copy}"))  # fmt: skip
    options = ours_only(
        ns, include_namespaces=[ns], namespace_mapping=mapping, cluster_resources="always",
        resource_modifiers=MODIFIERS.format(ns=ns),
    )  # fmt: skip
    _p, preview, predicted = restore_of(world, backup, is_preview=True, **options)
    assert preview.phase == "Completed" and preview.failed == 0, preview.error
    binding = predicted.item(CRB, "", f"{ns}-operator")
    assert binding.outcome == "created" and f"its copy {copy} would be created" in binding.message
    assert live(world.kube_b, CRB, "", copy) is None  # a preview changes nothing

    restore, outcome, rec = restore_of(world, backup, **options)
    delete_created_cluster_objects(world, rec)
    assert outcome.phase == "Completed" and outcome.failed == 0, outcome.error
    target_ns = mapping[ns]

    # The original binding is untouched (policy update would not patch it either: unit
    # tests); the copy grants the mapped account. (Policy update is not used here: it
    # would patch B's own cluster-wide objects, such as its aggregated ClusterRoles.)
    original = live(world.kube_b, CRB, "", f"{ns}-operator")
    assert [s["namespace"] for s in original["subjects"]] == [ns]
    assert live(world.kube_b, CRB, "", copy)["subjects"][0]["namespace"] == target_ns
    for account_ns in (ns, target_ns):
        assert allowed(world.kube_b, account_ns, group=group, resource="gadgets", verb="list")
    assert allowed(
        world.kube_b, target_ns, resource="configmaps", verb="create", namespace=target_ns
    )

    # References to the namespace follow it; the modifiers changed what they select only.
    gadget = live(world.kube_b, f"gadgets.{group}", target_ns, "item-001")
    assert gadget["spec"]["alertmanagers"][0]["namespace"] == target_ns
    assert gadget["spec"]["ruleNamespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": target_ns
    }
    assert gadget["spec"]["size"] == "large"
    assert "palette.io/drop" not in (gadget["metadata"].get("annotations") or {})
    untouched = live(world.kube_b, f"gadgets.{group}", target_ns, "item-010")
    assert untouched["spec"]["size"] == "small"
    assert untouched["metadata"]["annotations"]["palette.io/drop"] == "x"

    # The preview listed, object by object, the same rewrites and modifiers.
    def changes(recorder) -> dict:
        found = {}
        for i in recorder.items:
            if i.namespace != target_ns or i.resource == "serviceaccounts":
                continue  # (B's controller makes the default account; see the unit tests)
            message = i.message
            if message.startswith("Would be created ("):
                message = message.split(").", 1)[1].strip()
            found[(i.resource, i.name)] = message
        return found

    done = changes(rec)
    assert done == changes(predicted)
    assert "Modified by resource modifier rule 1" in done[(f"gadgets.{group}", "item-001")]
    assert "Modified by resource modifier rule 2" in done[(f"gadgets.{group}", "item-001")]
    assert (
        f"spec.alertmanagers[0].namespace: {ns} -> {target_ns}"
        in done[(f"widgets.{group}", "item-001")]
    )
