"""Discovery of resource types: a group-version that vanished between reading
``/apis`` and reading it (a CRD being deleted by someone else) is not a failure,
one that answers with another error is."""

from backups.engine.kube.api import ApiError
from backups.engine.kube.discovery import discover


class Answers:
    def __init__(self, docs: dict):
        self.docs = docs

    def get_json(self, path: str) -> dict:
        answer = self.docs[path]
        if isinstance(answer, ApiError):
            raise answer
        return answer


def resources(*names):
    return {"resources": [{"name": n, "kind": n.title(), "namespaced": True,
                           "verbs": ["list", "get"]} for n in names]}  # fmt: skip


def group(name, *versions):
    return {"name": name, "preferredVersion": {"version": versions[0]},
            "versions": [{"version": v} for v in versions]}  # fmt: skip


def cluster(**docs):
    return Answers({
        "/api": {"versions": ["v1"]},
        "/api/v1": resources("configmaps"),
        "/apis": {"groups": [group("apps", "v1"), group("gone.example.com", "v1"),
                             group("broken.example.com", "v1")]},
        "/apis/apps/v1": resources("deployments"),
        **docs,
    })  # fmt: skip


def test_a_group_version_deleted_mid_discovery_is_left_out_quietly():
    kube = cluster(**{
        "/apis/gone.example.com/v1": ApiError(404, "Not Found"),
        "/apis/broken.example.com/v1": resources("widgets"),
    })  # fmt: skip
    found = discover(kube, workers=2)
    assert {t.resource for t in found.types} == {"configmaps", "deployments", "widgets"}
    assert found.failures == []


def test_a_group_version_that_errors_otherwise_is_a_failure_that_may_hide_objects():
    kube = cluster(**{
        "/apis/gone.example.com/v1": ApiError(404, "Not Found"),
        "/apis/broken.example.com/v1": ApiError(503, "Service Unavailable"),
    })  # fmt: skip
    found = discover(kube, workers=2)
    assert {t.resource for t in found.types} == {"configmaps", "deployments"}
    assert found.failures == [("broken.example.com/v1", "503 Service Unavailable")]
