"""Raw JSON requests to a restore's target cluster, and where each type lives there.

``Target.request`` sends one request through the ``kubernetes`` client's
connection pool (``param_serialize`` + ``call_api`` + ``read()``: no model
objects) and answers a ``Response`` whatever the status; transport errors and
429/5xx answers are retried a few times, then a cluster that does not answer
raises ``ClusterUnreachable``. ``Target.endpoint`` finds the target's resource
type for a group-resource at a given version: the preferred one from discovery,
or another version the cluster also serves.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass

import urllib3
from kubernetes.client.exceptions import ApiException

from backups.engine.kube.api import ClusterUnreachable, Kube
from backups.engine.kube.discovery import Discovery, ResourceType, discover

RETRY_STATUSES = {429, 500, 502, 503, 504}
RETRIES = 4
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(slots=True)
class Response:
    status: int
    data: bytes
    phrase: str = ""  # the HTTP reason phrase

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def doc(self) -> dict:
        try:
            found = json.loads(self.data)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    @property
    def reason(self) -> str:
        return str(self.doc().get("reason", ""))

    def describe(self) -> str:
        """The API server's message, never a bare status code."""
        doc = self.doc()
        message = doc.get("message") or self.data[:300].decode("utf-8", "replace").strip()
        label = doc.get("reason") or self.phrase
        status = f"{self.status}{' ' + label if label else ''}"
        if not message:
            return f"The API server answered {status} without saying why."
        return f"{message} ({status})"


class Target:
    """Raw requests to the target cluster, and where each type lives there."""

    def __init__(self, kube: Kube, discovery: Discovery):
        self.kube = kube
        self.discovery = discovery
        self._served: dict[str, dict[str, ResourceType]] = {}
        self._lock = threading.Lock()

    def request(self, method, path, body=None, query=None, content_type=JSON) -> Response:
        for attempt in range(RETRIES + 1):
            try:
                response = Response(*self.kube.call(method, path, body, query, content_type))
            except (urllib3.exceptions.HTTPError, OSError, ssl.SSLError, ApiException) as exc:
                tls = isinstance(exc, ssl.SSLError | urllib3.exceptions.SSLError)
                if isinstance(exc, ApiException) and exc.status:
                    body_ = (
                        exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
                    )
                    response = Response(exc.status, body_)
                elif attempt == RETRIES or tls or "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise ClusterUnreachable(self.kube.describe(exc)) from None
                else:
                    time.sleep(0.5 * (attempt + 1))
                    continue
            if response.status in RETRY_STATUSES and attempt < RETRIES:
                time.sleep(0.5 * 2**attempt)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def refresh(self) -> None:
        self.discovery = discover(self.kube)
        with self._lock:
            self._served.clear()

    def _group_version(self, group: str, version: str) -> dict[str, ResourceType]:
        key = f"{group}/{version}"
        with self._lock:
            if key in self._served:
                return self._served[key]
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        found: dict[str, ResourceType] = {}
        response = self.request("GET", path)
        if response.ok:
            for res in response.doc().get("resources") or []:
                name = res.get("name", "")
                if name and "/" not in name:
                    found[name] = ResourceType(
                        group, version, name, res.get("kind", ""), bool(res.get("namespaced"))
                    )
        with self._lock:
            self._served[key] = found
        return found

    def endpoint(self, group_resource: str, api_version: str) -> ResourceType | None:
        """The target's type for ``group_resource`` at ``api_version``, if it serves it."""
        resource, _, group = group_resource.partition(".")
        version = api_version.rsplit("/", 1)[-1]
        preferred = self.discovery.find(group_resource)
        if preferred is not None and preferred.version == version:
            return preferred
        return self._group_version(group, version).get(resource)

    def served_versions(self, group_resource: str) -> list[str]:
        rt = self.discovery.find(group_resource)
        return [rt.api_version] if rt else []
