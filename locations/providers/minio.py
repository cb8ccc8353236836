"""MinIO through its official Python client (``minio``).

The client always addresses buckets path-style on a custom endpoint, which is
what MinIO requires. Multipart uploads use the client's S3 calls directly
(create, upload part, complete, abort), one part in memory at a time.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC
from typing import BinaryIO
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError

from backups.engine.storage.base import (
    NotFound,
    ObjectInfo,
    Provider,
    StorageError,
    Writer,
    check_range,
)
from locations.providers.common import CAFile, ObjectLocking, PartWriter, Translated, stream
from locations.providers.errors import Misconfigured, network_error, s3_error, scrub
from palette_site import egress

READ_CHUNK = 1024 * 1024


class MinioWriter(PartWriter):
    _upload_id: str | None = None

    def __init__(self, provider: MinioProvider, key: str, content_type: str):
        super().__init__(provider, key, content_type)
        self._parts_done: list[Part] = []

    def _put_whole(self, data: bytes) -> None:
        if md5 := self._p.md5_header(data):  # a locking bucket: retention and Content-MD5
            headers = {"Content-Type": self._content_type, **self._p.lock_headers(), **md5}
            with self._p.translated("PutObject", self._key):
                self._p.client._put_object(self._p.bucket, self._key, data, headers)
            return
        with self._p.translated("PutObject", self._key):
            self._p.client.put_object(
                self._p.bucket,
                self._key,
                io.BytesIO(data),
                len(data),
                content_type=self._content_type,
            )

    def _begin(self) -> None:
        with self._p.translated("CreateMultipartUpload", self._key):
            self._upload_id = self._p.client._create_multipart_upload(
                self._p.bucket,
                self._key,
                {"Content-Type": self._content_type, **self._p.lock_headers()},
            )

    def _put_part(self, number: int, data: bytes) -> None:
        with self._p.translated("UploadPart", self._key):
            etag = self._p.client._upload_part(
                self._p.bucket, self._key, data, self._p.md5_header(data) or None,
                self._upload_id, number,
            )  # fmt: skip
        self._parts_done.append(Part(number, etag))

    def _commit(self) -> None:
        with self._p.translated("CompleteMultipartUpload", self._key):
            self._p.client._complete_multipart_upload(
                self._p.bucket, self._key, self._upload_id, self._parts_done
            )

    def _cancel(self) -> None:
        if self._upload_id:
            with (
                contextlib.suppress(StorageError),
                self._p.translated("AbortMultipartUpload", self._key),
            ):
                self._p.client._abort_multipart_upload(self._p.bucket, self._key, self._upload_id)


class MinioProvider(Translated, ObjectLocking, Provider):
    def __init__(self, location, *, fail_fast: bool = False):
        self.bucket = location.bucket
        self._locking = bool(getattr(location, "locks", False))
        self.url = location.endpoint_url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Misconfigured(
                "MinIO needs its endpoint URL, such as https://minio.example.com:9000"
            )
        if parts.path not in ("", "/"):
            raise Misconfigured(
                f"The MinIO endpoint must not have a path ({parts.path}): give scheme, host and port"
            )
        creds = location.credentials or {}
        access, secret = creds.get("access_key"), creds.get("secret_key")
        if not (access and secret):
            raise Misconfigured("Set the access key and the secret key")
        self._secrets = [secret]
        self._ca = CAFile(location.ca_bundle)
        self.region = location.region or "us-east-1"
        timeout = 5 if fail_fast else 30
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout * 4),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=self._ca.path or certifi.where(),
            retries=urllib3.Retry(
                total=1 if fail_fast else 5,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
            ),
        )
        egress.guard(self._http, "store endpoint")  # the policy at every connection too
        self.client = Minio(
            parts.netloc,
            access_key=access,
            secret_key=secret,
            secure=parts.scheme == "https",
            # A known region saves a GetBucketLocation call (and its permission).
            region=self.region,
            http_client=self._http,
        )

    # Errors ---------------------------------------------------------------------------

    def _translate(self, exc: Exception, operation: str, key: str | None) -> StorageError:
        if isinstance(exc, S3Error):
            status = exc.response.status if exc.response is not None else None
            found = s3_error(exc.code or "", operation, self.bucket, key, status, self.region)
            if found is not None:
                return found
            message = scrub(exc.message or "", self._secrets)
            return StorageError(
                f"{operation} on bucket '{self.bucket}' failed: {exc.code} {message}".strip()
            )
        if isinstance(exc, InvalidResponseError | ServerError):
            status = getattr(exc, "_code", None) or getattr(exc, "_status_code", None) or "an error"
            return StorageError(
                f"{self.url} answered {operation} with HTTP {status} and no S3 error: "
                "check that the endpoint URL points at MinIO"
            )
        found = network_error(exc, self.url, bool(self._ca.path))
        if found is not None:
            return found
        detail = scrub(str(exc), self._secrets)
        return StorageError(f"{operation} on bucket '{self.bucket}' failed: {detail}")

    # Object lock ----------------------------------------------------------------------

    def md5_header(self, data: bytes) -> dict:
        md5 = self.content_md5(data)
        return {"Content-MD5": md5} if md5 else {}

    def lock_headers(self) -> dict:
        if self.retention is None:
            return {}
        return {
            "x-amz-object-lock-mode": self.retention.header_mode,
            "x-amz-object-lock-retain-until-date": self.retention.until.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            ),
        }

    def lock_config(self):
        from locations.object_lock import BucketLock

        try:
            with self.translated("GetObjectLockConfiguration"):
                config = self.client.get_object_lock_config(self.bucket)
        except StorageError as exc:
            if "ObjectLockConfigurationNotFound" in str(exc):
                return BucketLock(False)
            raise
        unit = {"Days": 1, "Years": 365}.get(config.duration_unit or "", 0)
        return BucketLock(True, (config.mode or "").lower(), (config.duration or 0) * unit)

    # Provider -------------------------------------------------------------------------

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        return MinioWriter(self, key, content_type)

    def open_read(self, key: str) -> BinaryIO:
        with self.translated("GetObject", key):
            response = self.client.get_object(self.bucket, key)

        def release() -> None:
            response.close()
            response.release_conn()

        return stream(
            response.stream(READ_CHUNK),
            on_close=release,
            translate=lambda exc: self._translate(exc, "GetObject", key),
        )

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if not check_range(start, length):
            return b""
        try:
            with self.translated("GetObject", key):
                response = self.client.get_object(self.bucket, key, offset=start, length=length)
        except StorageError as exc:
            if "InvalidRange" in str(exc):
                return b""  # the object ends before ``start``
            raise
        try:
            with self.translated("GetObject", key):
                return response.read()
        finally:
            response.close()
            response.release_conn()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self.translated("ListObjectsV2"):
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                yield ObjectInfo(item.object_name, item.size or 0, item.last_modified)

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under ``prefix``."""
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        with self.translated("ListObjectsV2"):
            items = self.client.list_objects(self.bucket, prefix=prefix, recursive=False)
            return sorted(
                item.object_name[len(prefix) :].rstrip("/") for item in items if item.is_dir
            )

    def delete(self, key: str) -> None:
        with self.translated("DeleteObject", key):
            self.client.remove_object(self.bucket, key)

    def exists(self, key: str) -> bool:
        try:
            with self.translated("HeadObject", key):
                self.client.stat_object(self.bucket, key)
        except NotFound:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        with self.translated("DeleteObjects"):
            errors = self.client.remove_objects(self.bucket, (DeleteObject(k) for k in keys))
            for error in errors:  # lazy: iterating performs the deletes
                raise S3Error(
                    None, error.code, error.message, None, None, None, self.bucket, error.name
                )
        return len(keys)

    def close(self) -> None:
        self._http.clear()
        self._ca.close()
