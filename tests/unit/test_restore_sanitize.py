"""What each object loses before it is created again, and how existing objects compare."""

from __future__ import annotations

import copy

from backups.engine.restore.sanitize import (
    BACKUP_LABEL,
    RESTORE_LABEL,
    SanitizeOptions,
    describe_paths,
    differences,
    is_legacy_token_secret,
    label_value,
    merge_patch,
    sanitize,
)

OPTIONS = SanitizeOptions(backup_name="nightly", restore_name="r1")
MAPPED = SanitizeOptions(
    backup_name="nightly", restore_name="r1", namespace_mapping={"shop": "shop-copy"}
)


def meta(name="x", namespace="shop", **extra):
    return {
        "name": name,
        "namespace": namespace,
        "uid": "u-1",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "selfLink": "/api/v1/x",
        "generateName": "x-",
        "deletionGracePeriodSeconds": 30,
        "deletionTimestamp": "2026-01-02T00:00:00Z",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "u-2"}],
        "managedFields": [{"manager": "kubectl"}],
        **extra,
    }


def test_every_object_loses_server_metadata_and_status_and_gets_the_restore_labels():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(labels={"app": "a"}),
           "data": {"k": "v"}, "status": {"phase": "x"}}  # fmt: skip
    out = sanitize("configmaps", obj, OPTIONS)
    assert out["metadata"] == {
        "name": "x",
        "namespace": "shop",
        "labels": {"app": "a", BACKUP_LABEL: "nightly", RESTORE_LABEL: "r1"},
    }
    assert "status" not in out and out["data"] == {"k": "v"}


def test_long_names_become_valid_label_values_as_velero_cuts_them():
    assert label_value("short") == "short"
    long = "a" * 70
    value = label_value(long)
    assert len(value) == 63 and value.startswith("a" * 57) and value != label_value("a" * 71)


def test_namespace_mapping_moves_objects_and_the_references_velero_rewrites():
    cm = sanitize("configmaps", {"metadata": meta()}, MAPPED)
    assert cm["metadata"]["namespace"] == "shop-copy"
    pv = sanitize(
        "persistentvolumes",
        {"metadata": {"name": "pv", "annotations": {"pv.kubernetes.io/bound-by-controller": "yes",
                                                     "keep": "1"}},
         "spec": {"claimRef": {"namespace": "shop", "name": "data", "uid": "u",
                               "resourceVersion": "9"}}},
        MAPPED,
    )  # fmt: skip
    assert pv["spec"]["claimRef"] == {"namespace": "shop-copy", "name": "data"}
    assert pv["metadata"]["annotations"] == {"keep": "1"}
    for gr in (
        "rolebindings.rbac.authorization.k8s.io",
        "clusterrolebindings.rbac.authorization.k8s.io",
    ):
        binding = sanitize(gr, {"metadata": {"name": "b"}, "subjects": [
            {"kind": "ServiceAccount", "name": "robot", "namespace": "shop"},
            {"kind": "ServiceAccount", "name": "other", "namespace": "billing"},
            {"kind": "User", "name": "alice"}]}, MAPPED)  # fmt: skip
        assert [s.get("namespace") for s in binding["subjects"]] == ["shop-copy", "billing", None]
    ns = sanitize(
        "namespaces",
        {"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}}},
        MAPPED,
    )
    assert ns["metadata"]["name"] == "shop-copy"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "shop-copy"


def test_pods_lose_their_node_priority_and_legacy_token_volumes():
    pod = {"metadata": meta(), "spec": {
        "nodeName": "n1", "priority": 100, "serviceAccountName": "robot",
        "volumes": [{"name": "robot-token-abcde"}, {"name": "data"}, {"name": "kube-api-access-x"}],
        "containers": [{"name": "c", "volumeMounts": [{"name": "robot-token-abcde"}, {"name": "data"}]}],
        "initContainers": [{"name": "i", "volumeMounts": [{"name": "robot-token-abcde"}]}]}}  # fmt: skip
    spec = sanitize("pods", pod, OPTIONS)["spec"]
    assert "nodeName" not in spec and "priority" not in spec
    assert [v["name"] for v in spec["volumes"]] == ["data", "kube-api-access-x"]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "data"}]
    assert spec["initContainers"][0]["volumeMounts"] == []


def test_services_lose_cluster_ips_unless_headless_and_node_ports_unless_preserved():
    def service(cluster_ip):
        return {"metadata": meta(), "spec": {
            "type": "NodePort", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
            "healthCheckNodePort": 31000,
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 81, "nodePort": 30081}]}}  # fmt: skip

    spec = sanitize("services", service("10.0.0.5"), OPTIONS)["spec"]
    assert "clusterIP" not in spec and "clusterIPs" not in spec
    assert spec["ports"] == [{"port": 80}, {"port": 81}] and "healthCheckNodePort" not in spec
    headless = sanitize("services", service("None"), OPTIONS)["spec"]
    assert headless["clusterIP"] == "None" and headless["clusterIPs"] == ["None"]
    kept = SanitizeOptions(backup_name="b", restore_name="r", preserve_node_ports=True)
    spec = sanitize("services", service("10.0.0.5"), kept)["spec"]
    assert [p["nodePort"] for p in spec["ports"]] == [30080, 30081]


def test_jobs_lose_the_controller_uid_selector_and_labels():
    labels = {"controller-uid": "u", "batch.kubernetes.io/controller-uid": "u", "job-name": "j"}
    job = {"metadata": meta(), "spec": {"selector": {"matchLabels": dict(labels)},
           "template": {"metadata": {"labels": dict(labels)}}}}  # fmt: skip
    spec = sanitize("jobs.batch", job, OPTIONS)["spec"]
    assert spec["selector"]["matchLabels"] == {"job-name": "j"}
    assert spec["template"]["metadata"]["labels"] == {"job-name": "j"}


def test_claims_lose_binding_annotations_and_a_reprovisioned_volume_name():
    annotations = {
        "pv.kubernetes.io/bind-completed": "yes",
        "pv.kubernetes.io/bound-by-controller": "yes",
        "volume.kubernetes.io/storage-provisioner": "p",
        "volume.beta.kubernetes.io/storage-provisioner": "p",
        "volume.kubernetes.io/selected-node": "n1",
        "mine": "kept",
    }
    claim = {"metadata": meta(annotations=dict(annotations)), "spec": {"volumeName": "pv-1"}}
    out = sanitize("persistentvolumeclaims", copy.deepcopy(claim), OPTIONS)
    assert out["metadata"]["annotations"] == {"mine": "kept"}
    assert out["spec"]["volumeName"] == "pv-1"
    anew = SanitizeOptions(backup_name="b", restore_name="r", reprovisioned_pvs=frozenset({"pv-1"}))
    assert "volumeName" not in sanitize("persistentvolumeclaims", claim, anew)["spec"]


def test_service_accounts_and_token_secrets_follow_velero():
    sa = {"metadata": meta(name="robot"),
          "secrets": [{"name": "robot-token-abc"}, {"name": "robot-pull"}]}  # fmt: skip
    assert sanitize("serviceaccounts", sa, OPTIONS)["secrets"] == [{"name": "robot-pull"}]
    token = {"type": "kubernetes.io/service-account-token",
             "metadata": meta(name="robot-long-lived", annotations={
                 "kubernetes.io/service-account.name": "robot",
                 "kubernetes.io/service-account.uid": "u"}),
             "data": {"token": "t", "ca.crt": "c", "extra": "e"}}  # fmt: skip
    assert not is_legacy_token_secret(token)
    out = sanitize("secrets", token, OPTIONS)
    assert out["data"] == {"extra": "e"}
    assert out["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "robot"}
    legacy = copy.deepcopy(token)
    legacy["metadata"]["name"] = "robot-token-x7k2p"
    assert is_legacy_token_secret(legacy)


# --- comparing ----------------------------------------------------------------------------


def test_an_object_equals_its_live_copy_whatever_the_server_added():
    desired = sanitize("deployments.apps", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta(labels={"app": "a"}, annotations={"deployment.kubernetes.io/revision": "4"}),
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }, OPTIONS)  # fmt: skip
    live = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "shop", "uid": "other", "resourceVersion": "1",
                     "labels": {"app": "a"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"},
                     "ownerReferences": [{"kind": "X"}], "managedFields": [{}]},
        "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {
            "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}],
            "restartPolicy": "Always"}}},
        "status": {"replicas": 0},
    }  # fmt: skip
    assert differences("deployments.apps", desired, live) == []


def test_differences_name_the_paths_that_differ():
    desired = {"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "a"}},
               "spec": {"replicas": 2, "ports": [{"port": 80}], "flag": True, "empty": {}}}  # fmt: skip
    live = {"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "b"}},
            "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 81}], "flag": 1}}  # fmt: skip
    assert differences("services", desired, live) == [
        'metadata.labels["app.kubernetes.io/name"]',
        "spec.replicas",
        "spec.ports",
        "spec.flag",
    ]
    assert describe_paths(["a", "b", "c", "d", "e", "f"]) == "a, b, c, d and 2 more"


def test_config_data_is_compared_key_for_key_and_the_patch_removes_extra_keys():
    desired = sanitize("configmaps", {"metadata": meta(), "data": {"a": "1"}}, OPTIONS)
    live = {"metadata": {"name": "x", "namespace": "shop"}, "data": {"a": "1", "b": "2"}}
    assert differences("configmaps", desired, live) == ["data.b"]
    patch = merge_patch("configmaps", desired, live)
    assert patch["data"] == {"a": "1", "b": None}
    assert patch["metadata"]["labels"][RESTORE_LABEL] == "r1"
    # other maps merge: a label the cluster added is not a difference
    live = {"metadata": {"name": "x", "namespace": "shop", "labels": {"added": "1"}},
            "data": {"a": "1"}}  # fmt: skip
    assert differences("configmaps", desired, live) == []


def test_the_restore_labels_of_an_earlier_restore_are_not_a_difference():
    desired = sanitize("configmaps", {"metadata": meta(), "data": {"a": "1"}}, OPTIONS)
    live = {"metadata": {"name": "x", "namespace": "shop",
                         "labels": {BACKUP_LABEL: "older", RESTORE_LABEL: "r0"}},
            "data": {"a": "1"}}  # fmt: skip
    assert differences("configmaps", desired, live) == []


def test_a_token_secret_filled_by_its_controller_equals_its_backup():
    token = {"type": "kubernetes.io/service-account-token",
             "metadata": meta(name="robot-long-lived", annotations={
                 "kubernetes.io/service-account.name": "robot"}),
             "data": {"token": "t", "ca.crt": "c"}}  # fmt: skip
    desired = sanitize("secrets", token, OPTIONS)
    live = {"type": "kubernetes.io/service-account-token",
            "metadata": {"name": "robot-long-lived", "namespace": "shop", "annotations": {
                "kubernetes.io/service-account.name": "robot",
                "kubernetes.io/service-account.uid": "new"}},
            "data": {"token": "new", "ca.crt": "new", "namespace": "c2hvcA=="}}  # fmt: skip
    assert differences("secrets", desired, live) == []
