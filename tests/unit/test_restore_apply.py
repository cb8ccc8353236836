"""The apply step's decisions that need no cluster: versions, messages, previews."""

from __future__ import annotations

import json
import threading

from backups.engine.kube.discovery import ResourceType
from backups.engine.restore.apply import FAILED, Applier
from backups.engine.restore.plan import PlannedItem
from backups.engine.restore.sanitize import SanitizeOptions
from backups.engine.restore.target import Response

OPTIONS = SanitizeOptions(backup_name="b", restore_name="r")
V2 = ResourceType("demo.io", "v2", "widgets", "Widget", True)


class FakeTarget:
    """Serves widgets.demo.io at v2 only."""

    def __init__(self):
        self.requests = []

    def endpoint(self, group_resource, api_version):
        return V2 if api_version == "demo.io/v2" else None

    def served_versions(self, group_resource):
        return ["demo.io/v2"]

    def request(self, method, path, body=None, query=None, content_type=""):
        self.requests.append((method, path, body, query))
        return Response(201, b"{}")


def applier(target, dry_run=False):
    return Applier(
        target, None, workers=1, dry_run=dry_run, update=False, planned=set(),
        stop=threading.Event(),
    )  # fmt: skip


def widget(version: str, alternates=None) -> PlannedItem:
    obj = {"apiVersion": f"demo.io/{version}", "kind": "Widget",
           "metadata": {"name": "w", "namespace": "shop"}}  # fmt: skip
    return PlannedItem("widgets.demo.io", "shop", "shop", "w", obj["apiVersion"], "Widget",
                       json.dumps(obj).encode(), OPTIONS, alternates=alternates)  # fmt: skip


def test_an_item_at_a_version_the_target_lacks_uses_another_copy_from_the_archive():
    target = FakeTarget()
    copy = {"apiVersion": "demo.io/v2", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "shop", "uid": "x"}, "status": {}}  # fmt: skip
    item = widget("v1", {"v2-preferredversion": json.dumps(copy).encode()})
    result = applier(target).apply(item)
    assert result.outcome == "created" and result.api_version == "demo.io/v2"
    method, path, body, query = target.requests[0]
    assert path == "/apis/demo.io/v2/namespaces/shop/widgets" and query is None
    assert "uid" not in body["metadata"] and "status" not in body  # sanitized too
    assert body["metadata"]["labels"]["velero.io/restore-name"] == "r"


def test_no_served_version_is_reported_clearly():
    result = applier(FakeTarget()).apply(widget("v1"))
    assert result.outcome == FAILED
    assert result.message == (
        "The backup holds it as demo.io/v1, which the cluster does not serve "
        "(it serves demo.io/v2)."
    )


def test_a_preview_writes_with_dry_run():
    target = FakeTarget()
    assert applier(target, dry_run=True).apply(widget("v2")).outcome == "created"
    assert target.requests[0][3] == {"dryRun": "All"}


def test_server_refusals_are_described_with_their_message():
    status = {"kind": "Status", "reason": "Invalid", "code": 422,
              "message": 'Service "web" is invalid: spec.ports[0].nodePort: Invalid value: '
                         "30080: provided port is already allocated"}  # fmt: skip
    text = Response(422, json.dumps(status).encode(), "Unprocessable Entity").describe()
    assert text.endswith("provided port is already allocated (422 Invalid)")
    assert Response(503, b"", "Service Unavailable").describe() == (
        "The API server answered 503 Service Unavailable without saying why."
    )


def test_a_preview_does_not_count_a_missing_account_that_the_restore_creates():
    """Servers that check a pod's service account refuse its dry run while the account
    exists only in the plan; the real restore creates the account first."""

    class Refusing(FakeTarget):
        def endpoint(self, group_resource, api_version):
            return ResourceType("", "v1", "pods", "Pod", True)

        def request(self, method, path, body=None, query=None, content_type=""):
            if method == "GET":
                return Response(404, b"{}")
            message = 'pods "p" is forbidden: error looking up service account shop/robot: x'
            return Response(403, json.dumps({"message": message}).encode())

    pod = PlannedItem("pods", "shop", "shop", "p", "v1", "Pod", b'{"kind": "Pod"}', OPTIONS)
    preview = applier(Refusing(), dry_run=True)
    preview.planned = {("serviceaccounts", "shop", "robot")}
    result = preview.apply(pod)
    assert result.outcome == "created" and "service account robot" in result.message
    preview.planned = set()
    assert preview.apply(pod).outcome == FAILED
