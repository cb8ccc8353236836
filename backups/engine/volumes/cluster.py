"""JSON requests for the volume work (objects in, objects out) and bounded waits.

A thin layer over ``Kube.call``: an error status raises ``ApiError`` with the server's
message, no answer raises ``ClusterUnreachable`` (as every engine request does).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Callable

import urllib3
from kubernetes.client.exceptions import ApiException

from backups.engine.kube.api import ApiError, ClusterUnreachable, Kube
from backups.engine.volumes.objects import SNAPSHOT_API

MERGE_PATCH = "application/merge-patch+json"
POLL = 0.5


class WaitTimeout(Exception):
    """A bounded wait ran out; ``str()`` says what was awaited and the last state seen."""


def core_path(namespace: str, plural: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


def snapshot_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{SNAPSHOT_API}/namespaces/{namespace}/volumesnapshots"
    return f"{base}/{name}" if name else base


def content_path(name: str = "") -> str:
    base = f"/apis/{SNAPSHOT_API}/volumesnapshotcontents"
    return f"{base}/{name}" if name else base


class Objects:
    def __init__(self, kube: Kube):
        self.kube = kube

    def request(self, method: str, path: str, body=None, query=None, content_type=None):
        # The client serializes a dict body itself (JSON and merge-patch content types).
        try:
            status, raw, reason = self.kube.call(
                method, path, body, query, content_type or ("application/json" if body else None)
            )
        except (urllib3.exceptions.HTTPError, OSError, ssl.SSLError, ApiException) as exc:
            if isinstance(exc, ApiException) and exc.status:
                raise ApiError(exc.status, exc.reason or "") from None
            raise ClusterUnreachable(self.kube.describe(exc)) from None
        if not 200 <= status <= 299:
            message = ""
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(raw).get("message", "")
            raise ApiError(status, reason, message)
        return json.loads(raw) if raw else {}

    def get(self, path: str, query=None) -> dict:
        return self.request("GET", path, query=query)

    def find(self, path: str) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, path: str, selector: str = "") -> list[dict]:
        query = {"labelSelector": selector} if selector else None
        return self.get(path, query).get("items") or []

    def create(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self.request("PATCH", path, body, content_type=MERGE_PATCH)

    def delete(self, path: str) -> bool:
        """Delete now (no grace, background propagation); False when already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "propagationPolicy": "Background"}  # fmt: skip
        try:
            self.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def wait_gone(self, path: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.find(path) is None:
                return True
            time.sleep(POLL)
        return False


def wait_for(
    what: str,
    check: Callable[[], tuple[bool, str]],
    timeout: float,
    should_stop: Callable[[], bool] = lambda: False,
    on_stop: Callable[[], None] = lambda: None,
) -> None:
    """Poll ``check`` (-> (done, state)) until done; raise ``WaitTimeout`` with the last
    state after ``timeout`` seconds. ``on_stop`` is called (and must raise) when
    ``should_stop`` says yes."""
    deadline = time.monotonic() + timeout
    state = ""
    while True:
        done, state = check()
        if done:
            return
        if should_stop():
            on_stop()
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"{what} was not ready after {timeout:g} seconds" + (f" ({state})" if state else "")
            )
        time.sleep(POLL)
