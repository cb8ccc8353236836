"""Google Cloud Storage through google-cloud-storage.

Credentials: ``service_account_json`` (the key file's JSON text) in the location's
credentials. Without one, an ``endpoint_url`` names an emulator (fake-gcs-server)
or a proxy that authenticates by itself, and requests go there anonymously; with
neither, Application Default Credentials. Large objects go up as a resumable
upload in 8 MiB chunks and come down in 4 MiB ranges.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import BinaryIO

import google.auth
import google.auth.exceptions
import requests
from google.api_core import exceptions as api
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from backups.engine.storage.base import (
    AccessDenied,
    BadCredentials,
    BucketMissing,
    ClockSkew,
    NotFound,
    ObjectInfo,
    Provider,
    StorageError,
    Writer,
    check_range,
)
from locations.providers.common import CAFile, PartWriter, Translated, stream
from locations.providers.errors import Misconfigured, network_error, scrub
from palette_site import egress

SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
DEFAULT_PROJECT = "palette-backup-console"
READ_CHUNK = 1024 * 1024
# Downloads go in ranged GETs of this size (each held in memory once).
RANGE_SIZE = 4 * 1024 * 1024
PERMISSIONS = {
    "write": "storage.objects.create",
    "read": "storage.objects.get",
    "list": "storage.objects.list",
    "delete": "storage.objects.delete",
}


class GCSWriter(PartWriter):
    _writer = None

    def __init__(self, provider: GCSProvider, key: str, content_type: str):
        super().__init__(provider, key, content_type)
        self._blob = provider.bucket.blob(key)

    def _put_whole(self, data: bytes) -> None:
        with self._p.translated("write", self._key):
            self._blob.upload_from_string(
                data, content_type=self._content_type, **self._p.call_options
            )

    def _begin(self) -> None:
        # The SDK's resumable upload; it sends a chunk as soon as it holds one.
        self._writer = self._blob.open(
            "wb",
            chunk_size=self.part_size,
            ignore_flush=True,
            content_type=self._content_type,
            **self._p.call_options,
        )

    def _put_part(self, number: int, data: bytes) -> None:
        with self._p.translated("write", self._key):
            self._writer.write(data)

    def _commit(self) -> None:
        with self._p.translated("write", self._key):
            self._writer.close()

    def _cancel(self) -> None:
        """Cancel the resumable session (a DELETE on its URL, which GCS answers 499) and
        close the SDK's writer without finalising, so that neither the session nor the
        writer's garbage collection can still create the object."""
        upload = (getattr(self._writer, "_upload_and_transport", None) or [None])[0]
        url = getattr(upload, "resumable_url", None)
        if url:
            with contextlib.suppress(Exception):
                self._p.session.delete(url, timeout=10)
        with contextlib.suppress(Exception):
            self._writer.terminate()


class _CustomCA:
    """requests lets REQUESTS_CA_BUNDLE (and CURL_CA_BUNDLE) override a session's
    ``verify``; a location's custom CA bundle must win over the environment."""

    ca_path: str | None = None

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_path:
            settings["verify"] = self.ca_path
        return settings


class _TokenSession(_CustomCA, requests.Session):
    """The session that fetches OAuth tokens (the token endpoint sees the same CA)."""


class _Session(_CustomCA, AuthorizedSession):
    def __init__(self, credentials, ca_path: str | None):
        token_session = egress.guard_session(_TokenSession(), "token_uri")
        token_session.ca_path = ca_path
        super().__init__(credentials, auth_request=Request(token_session))
        self.ca_path = ca_path
        if ca_path:
            self.verify = ca_path
        egress.guard_session(self, "store endpoint")  # the policy at every connection too


class GCSProvider(Translated, Provider):
    def __init__(self, location, *, fail_fast: bool = False):
        self.bucket_name = location.bucket
        self.endpoint = location.endpoint_url.rstrip("/") or None
        self.url = self.endpoint or "https://storage.googleapis.com"
        info = self._service_account(location.credentials or {})
        self._secrets = [info.get("private_key"), info.get("private_key_id")] if info else []
        self._token_uri = info.get("token_uri", "")
        if info:
            try:
                credentials = service_account.Credentials.from_service_account_info(
                    info, scopes=SCOPES
                )
            except (ValueError, KeyError) as exc:
                raise Misconfigured(
                    f"The service account JSON is not usable: {scrub(str(exc), self._secrets)}"
                ) from None
            project = info.get("project_id") or DEFAULT_PROJECT
        elif self.endpoint:
            # An emulator (fake-gcs-server, ...), or a proxy that authenticates itself.
            credentials, project = AnonymousCredentials(), DEFAULT_PROJECT
        else:
            try:
                credentials, project = google.auth.default(scopes=SCOPES)
            except google.auth.exceptions.DefaultCredentialsError:
                raise BadCredentials(
                    "No credentials: paste a service account key (JSON), or run the console "
                    "with Google Application Default Credentials"
                ) from None
        project = info.get("project_id") or project
        self._ca = CAFile(location.ca_bundle)
        self.session = _Session(credentials, self._ca.path)
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        self.client = storage.Client(
            project=project or DEFAULT_PROJECT,
            credentials=credentials,
            _http=self.session,
            client_options=options,
        )
        self.bucket = self.client.bucket(self.bucket_name)
        deadline = 10 if fail_fast else 120
        self.call_options = {
            "timeout": (5, 30) if fail_fast else (20, 120),
            "retry": DEFAULT_RETRY.with_timeout(deadline) if not fail_fast else None,
        }

    @staticmethod
    def _service_account(creds: dict) -> dict:
        text = (creds.get("service_account_json") or "").strip()
        if not text:
            return {}
        try:
            info = json.loads(text)
        except ValueError:
            raise Misconfigured("The service account key is not valid JSON") from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise Misconfigured(
                'The service account key must be a JSON object with "type": "service_account"'
            )
        return info

    # Errors ---------------------------------------------------------------------------

    def _translate(self, exc: Exception, action: str, key: str | None) -> StorageError:
        if isinstance(exc, api.RetryError) and exc.cause is not None:
            exc = exc.cause
        status = getattr(exc, "code", None)
        response = getattr(exc, "response", None)
        if not isinstance(status, int) and response is not None:
            status = getattr(response, "status_code", None)  # resumable upload errors
        text = scrub(str(exc), self._secrets)
        if isinstance(exc, google.auth.exceptions.TransportError):
            found = network_error(exc, self._token_uri or "Google's token endpoint", False)
            if found is not None:
                return found
        if isinstance(exc, google.auth.exceptions.RefreshError):
            if "iat" in text or "timeframe" in text:
                return ClockSkew(
                    "The clock of this machine and Google's differ too much for the service "
                    "account's token (invalid_grant): synchronise this machine's clock (NTP)"
                )
            return BadCredentials(
                "Google rejected the service account key (invalid_grant): it may have been "
                "deleted or disabled; create a new key"
            )
        if status == 404:
            if action in ("read",) and "bucket" not in text.lower():
                return NotFound(f"Object '{key}' does not exist in bucket '{self.bucket_name}'")
            return BucketMissing(f"Bucket '{self.bucket_name}' does not exist")
        if status == 403:
            return AccessDenied(
                f"Access denied to bucket '{self.bucket_name}': the credentials lack "
                f"{PERMISSIONS.get(action, action)}"
            )
        if status == 401:
            return BadCredentials("The service account credentials were rejected (401)")
        if status == 400 and "bucket" in text.lower() and "invalid" in text.lower():
            return Misconfigured(f"Google rejects the bucket name '{self.bucket_name}'")
        found = network_error(exc, self.url, bool(self._ca.path))
        if found is not None:
            return found
        # Never the response's body: a token_uri or endpoint that is not Google's
        # would have its answer shown to whoever typed it.
        answer = f"the store answered HTTP {status}" if status else type(exc).__name__
        return StorageError(f"Cannot {action} in bucket '{self.bucket_name}': {answer}")

    # Provider -------------------------------------------------------------------------

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        return GCSWriter(self, key, content_type)

    def open_read(self, key: str) -> BinaryIO:
        with self.translated("read", key):
            blob = self.bucket.get_blob(key, **self.call_options)
            if blob is None:
                if not self.bucket.exists(**self.call_options):
                    raise BucketMissing(f"Bucket '{self.bucket_name}' does not exist")
                raise NotFound(f"Object '{key}' does not exist in bucket '{self.bucket_name}'")
            reader = blob.open(
                "rb",
                chunk_size=RANGE_SIZE,
                raw_download=True,
                if_generation_match=blob.generation,
                **self.call_options,
            )
        return stream(
            iter(lambda: reader.read(READ_CHUNK), b""),
            on_close=reader.close,
            translate=lambda exc: self._translate(exc, "read", key),
        )

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if not check_range(start, length):
            return b""
        blob = self.bucket.blob(key)
        try:
            with self.translated("read", key):
                return blob.download_as_bytes(
                    start=start, end=start + length - 1, raw_download=True, **self.call_options
                )
        except NotFound:
            if not self.bucket.exists(**self.call_options):
                raise BucketMissing(f"Bucket '{self.bucket_name}' does not exist") from None
            raise NotFound(
                f"Object '{key}' does not exist in bucket '{self.bucket_name}'"
            ) from None
        except StorageError as exc:
            if "416" in str(exc) or "not satisfiable" in str(exc).lower():
                return b""  # the object ends before ``start``
            raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self.translated("list"):
            for blob in self.client.list_blobs(
                self.bucket_name, prefix=prefix, **self.call_options
            ):
                yield ObjectInfo(blob.name, blob.size or 0, blob.updated)

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under ``prefix``."""
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        with self.translated("list"):
            pages = self.client.list_blobs(
                self.bucket_name, prefix=prefix, delimiter="/", **self.call_options
            )
            for _ in pages:  # the folders arrive with the pages
                pass
            return sorted(p[len(prefix) :].rstrip("/") for p in pages.prefixes)

    def delete(self, key: str) -> None:
        with self.translated("delete", key), contextlib.suppress(api.NotFound):
            self.bucket.blob(key).delete(**self.call_options)

    def exists(self, key: str) -> bool:
        with self.translated("read", key):
            return self.bucket.blob(key).exists(**self.call_options)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.session.close()
        self._ca.close()
