"""A busy API server (429, or a 5xx with Retry-After) is asked again after the wait it
names, a bounded number of times; any other error status is final at once."""

import pytest

from backups.engine.kube import api
from backups.engine.kube.api import ApiError, Kube, busy_wait


class Response:
    def __init__(self, status, retry_after=None):
        self.status = status
        self.headers = {} if retry_after is None else {"Retry-After": retry_after}

    def getheader(self, name, default=None):
        return self.headers.get(name, default)


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [(429, "1", 1.0), (503, "2", 2.0), (429, "600", api.BUSY_WAIT), (429, None, None),
     (404, "1", None), (500, "soon", None), (200, "1", None)],
)  # fmt: skip
def test_busy_wait(status, retry_after, wait):
    assert busy_wait(Response(status, retry_after)) == wait


def scripted(answers):
    kube = object.__new__(Kube)
    asked = []

    def request(method, path, body=None, query=None, content_type=None):
        asked.append(path)
        return answers.pop(0)

    kube._request = request
    return kube, asked


def test_a_get_waits_and_asks_again_while_the_server_is_busy(monkeypatch):
    slept = []
    monkeypatch.setattr(api.time, "sleep", slept.append)
    kube, asked = scripted(
        [(429, b"{}", "Too Many Requests", 1.0), (200, b'{"ok": 1}', "OK", None)]
    )
    assert kube.get_json("/api/v1/configmaps") == {"ok": 1}
    assert slept == [1.0] and len(asked) == 2


def test_a_get_gives_up_after_the_bounded_retries(monkeypatch):
    monkeypatch.setattr(api.time, "sleep", lambda _: None)
    busy = (429, b'{"message": "slow down"}', "Too Many Requests", 0.5)
    kube, asked = scripted([busy] * (api.BUSY_RETRIES + 1))
    with pytest.raises(ApiError, match="429 Too Many Requests: slow down"):
        kube.get("/api/v1/configmaps")
    assert len(asked) == api.BUSY_RETRIES + 1


def test_an_error_without_retry_after_is_final(monkeypatch):
    monkeypatch.setattr(api.time, "sleep", pytest.fail)
    kube, asked = scripted([(403, b"{}", "Forbidden", None)])
    with pytest.raises(ApiError, match="403"):
        kube.get("/api/v1/secrets")
    assert len(asked) == 1
