"""The etcd seeder of the large-cluster benchmarks (benchmarks/scale_etcd.py): an object
written to etcd is its template (the API server's stored form of the object at the same
place in the cycle) with the object's own fields, a new uid and time; the check against
API creates ignores only what differs between two creates. The live check (etcd-written
objects served, listed, deleted and equal to API creates) runs in the seeder itself."""

from __future__ import annotations

import json

from benchmarks import scale_etcd
from devenv.scale_objects import CYCLE, PER_NAMESPACE, scale_object


def served(i: int, prefix: str = "tp") -> dict:
    """What the API server answers for object i created through it (the parts that matter
    here): defaults, uid, resourceVersion, the create's managedFields and, for a
    Deployment, a controller's status and revision."""
    obj = scale_object(i, prefix)
    meta = obj["metadata"]
    meta.update(uid=f"uid-{i}", resourceVersion="42", creationTimestamp="2026-01-01T00:00:00Z",
                generation=1)  # fmt: skip
    fields = {"f:metadata": {"f:labels": {}}}
    if obj["kind"] == "Deployment":
        name = obj["spec"]["template"]["spec"]["containers"][0]["name"]
        fields["f:spec"] = {"f:template": {"f:spec": {"f:containers": {
            f'k:{{"name":"{name}"}}': {".": {}}}}}}  # fmt: skip
        obj["spec"]["strategy"] = {"type": "RollingUpdate"}
        obj["status"] = {"observedGeneration": 1}
        meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
    if obj["kind"] == "Service":
        for port in obj["spec"]["ports"]:
            port["protocol"] = "TCP"
    meta["managedFields"] = [
        {"manager": "OpenAPI-Generator", "operation": "Update", "time": "t0",
         "fieldsType": "FieldsV1", "fieldsV1": fields},
        {"manager": "kube-controller-manager", "operation": "Update", "time": "t1",
         "subresource": "status"},
    ]  # fmt: skip
    return obj


def test_an_object_is_its_template_with_its_own_fields():
    for i in range(PER_NAMESPACE, PER_NAMESPACE + CYCLE):
        template = scale_etcd.template_of(served(i % CYCLE))
        obj = scale_etcd.stored_object(i, "tp", template, "2026-02-02T00:00:00Z")
        own = scale_object(i, "tp")
        meta = obj["metadata"]
        assert meta["name"] == own["metadata"]["name"]
        assert meta["namespace"] == own["metadata"]["namespace"]
        assert meta["labels"] == own["metadata"]["labels"]
        assert meta["annotations"] == own["metadata"]["annotations"]  # no controller's
        assert meta["creationTimestamp"] == "2026-02-02T00:00:00Z"
        assert "resourceVersion" not in meta and meta["uid"] != f"uid-{i % CYCLE}"
        assert [m["manager"] for m in meta["managedFields"]] == ["OpenAPI-Generator"]
        assert meta["managedFields"][0]["time"] == "2026-02-02T00:00:00Z"
        assert meta["generation"] == 1  # kept from the create
        if own["kind"] == "Deployment":
            assert "status" not in obj  # the deployment controller writes it
            assert obj["spec"]["strategy"] == {"type": "RollingUpdate"}  # a default kept
            container = own["spec"]["template"]["spec"]["containers"][0]["name"]
            text = json.dumps(meta["managedFields"])
            assert scale_etcd._list_key(container) in text
        if own["kind"] == "Service":
            assert [p["protocol"] for p in obj["spec"]["ports"]] == ["TCP"]
        # everything the object says for itself is there
        for key in own:
            if key != "metadata":
                assert scale_etcd._merge(obj[key], own[key]) == obj[key]


def test_list_key_matches_the_servers_json():
    fields = json.dumps([{"f:containers": {'k:{"name":"app-07"}': {}}}])
    assert scale_etcd._list_key("app-07") in fields


def test_services_with_a_cluster_ip_go_through_the_api():
    kinds = [scale_object(i, "tp") for i in range(CYCLE)]
    api = [i for i in range(CYCLE) if scale_etcd.through_api(i)]
    assert len(api) == 1 and kinds[api[0]]["kind"] == "Service"
    assert "clusterIP" not in kinds[api[0]]["spec"]


def test_etcd_keys_are_the_api_servers():
    assert (
        scale_etcd.etcd_key(scale_object(0, "tp"))
        == b"/registry/configmaps/tp-0000/configmap-0000000"
    )
    kinds = {scale_object(i, "tp")["kind"]: scale_object(i, "tp") for i in range(CYCLE)}
    assert scale_etcd.etcd_key(kinds["Service"]).startswith(b"/registry/services/specs/tp-0000/")
    assert scale_etcd.etcd_key(kinds["Widget"]).startswith(b"/registry/demo.palette.io/widgets/")


def test_comparable_ignores_only_what_two_creates_differ_in():
    a, b = served(CYCLE - 1), served(CYCLE - 1)
    b["metadata"].update(uid="other", resourceVersion="7", creationTimestamp="later")
    b["metadata"]["managedFields"][0]["time"] = "later"
    assert scale_etcd.comparable(a) == scale_etcd.comparable(b)
    b["metadata"]["labels"]["tier"] = "changed"
    assert scale_etcd.comparable(a) != scale_etcd.comparable(b)
    deployment = next(i for i in range(CYCLE) if scale_object(i, "tp")["kind"] == "Deployment")
    a, b = served(deployment), served(deployment)
    del b["status"], b["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert scale_etcd.comparable(a) == scale_etcd.comparable(b)
    b["spec"]["replicas"] = 3
    assert scale_etcd.comparable(a) != scale_etcd.comparable(b)
