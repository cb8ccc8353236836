"""AWS S3 (and any S3-compatible store) through boto3.

Credentials: static (``access_key``/``secret_key`` in the location's credentials),
or STS AssumeRole with the location's ``role_arn`` and ``external_id``, called
with the optional static keys or else boto3's default chain; the temporary
credentials refresh themselves before they expire.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import BinaryIO

import boto3
import botocore.exceptions
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.session import get_session

from backups.engine.storage.base import (
    AccessDenied,
    BadCredentials,
    NotFound,
    ObjectInfo,
    Provider,
    StorageError,
    Writer,
    check_range,
)
from locations.providers.common import CAFile, ObjectLocking, PartWriter, stream
from locations.providers.errors import (
    S3_CREDENTIAL_CODES,
    Misconfigured,
    network_error,
    s3_error,
    scrub,
)
from palette_site import egress

SESSION_NAME = "palette-backup-console"
ROLE_DURATION = 3600
DELETE_BATCH = 1000
READ_CHUNK = 1024 * 1024


class S3Writer(PartWriter):
    _upload_id: str | None = None

    def __init__(self, provider: S3Provider, key: str, content_type: str):
        super().__init__(provider, key, content_type)
        self._etags: list[dict] = []

    def _call(self, operation: str, **params):
        return self._p.call(operation, self._key, **params)

    def _put_whole(self, data: bytes) -> None:
        lock = self._p.lock_params(data)
        self._call("PutObject", Body=data, ContentType=self._content_type, **lock)

    def _begin(self) -> None:
        lock = self._p.lock_params()
        answer = self._call("CreateMultipartUpload", ContentType=self._content_type, **lock)
        self._upload_id = answer["UploadId"]

    def _put_part(self, number: int, data: bytes) -> None:
        answer = self._call(
            "UploadPart", UploadId=self._upload_id, PartNumber=number, Body=data,
            **self._p.md5_params(data),
        )  # fmt: skip
        self._etags.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _commit(self) -> None:
        self._call(
            "CompleteMultipartUpload",
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._etags},
        )

    def _cancel(self) -> None:
        if self._upload_id:
            with contextlib.suppress(StorageError):
                self._call("AbortMultipartUpload", UploadId=self._upload_id)


class S3Provider(ObjectLocking, Provider):
    def __init__(self, location, *, fail_fast: bool = False):
        self.bucket = location.bucket
        self._locking = bool(getattr(location, "locks", False))
        self.endpoint = location.endpoint_url or None
        self.url = self.endpoint or "https://s3.amazonaws.com"
        creds = location.credentials or {}
        self._secrets = [creds.get("secret_key"), creds.get("session_token")]
        self._ca = CAFile(location.ca_bundle)
        region = location.region or "us-east-1"
        self._config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path" if location.force_path_style else "auto"},
            retries={"mode": "standard", "total_max_attempts": 2 if fail_fast else 5},
            connect_timeout=5 if fail_fast else 20,
            read_timeout=20 if fail_fast else 120,
            # S3-compatible stores (MinIO, Ceph, ...) do not all accept the
            # CRC checksums boto3 adds by default since 1.36.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._boto = self._session(location, creds, region)
        self.client = self.service_client("s3", "store endpoint")

    def service_client(self, service: str, what: str):
        """A client of another AWS service (KMS) with this location's identity,
        endpoint, CA and timeouts, held to the egress policy like the store."""
        client = self._boto.client(
            service, endpoint_url=self.endpoint, verify=self._ca.verify, config=self._config
        )
        return egress.guard_botocore(client, what)  # the policy at every connection too

    # Credentials ----------------------------------------------------------------------

    def _session(self, location, creds: dict, region: str) -> boto3.Session:
        access, secret = creds.get("access_key"), creds.get("secret_key")
        if location.credential_mode == "sts":
            if not location.role_arn:
                raise Misconfigured("STS needs the ARN of the role to assume")
            base = boto3.Session(
                aws_access_key_id=access or None,
                aws_secret_access_key=secret or None,
                region_name=region,
            )
            botocore_session = get_session()
            botocore_session._credentials = self._assumed_role(location, base, region)
            botocore_session.set_config_variable("region", region)
            return boto3.Session(botocore_session=botocore_session)
        if location.credential_mode == "static" and not (access and secret):
            raise Misconfigured("Set the access key and the secret key")
        return boto3.Session(
            aws_access_key_id=access or None,
            aws_secret_access_key=secret or None,
            aws_session_token=creds.get("session_token") or None,
            region_name=region,
        )

    def _assumed_role(
        self, location, base: boto3.Session, region: str
    ) -> DeferredRefreshableCredentials:
        """Temporary credentials from AssumeRole(ExternalId), refreshed before expiry."""
        self.sts = egress.guard_botocore(
            base.client(
                "sts", endpoint_url=self.endpoint, verify=self._ca.verify, config=self._config
            ),
            "STS endpoint",
        )
        params = {
            "RoleArn": location.role_arn,
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": ROLE_DURATION,
        }
        if location.external_id:
            params["ExternalId"] = location.external_id

        def fetch() -> dict:
            try:
                answer = self.sts.assume_role(**params)["Credentials"]
            except botocore.exceptions.NoCredentialsError:
                raise BadCredentials(
                    "No base credentials to call STS AssumeRole with: set an access key and "
                    "secret key, or run the console with an AWS identity"
                ) from None
            except Exception as exc:
                raise self._translate(exc, "AssumeRole", None, self.sts.meta.endpoint_url) from None
            return {
                "access_key": answer["AccessKeyId"],
                "secret_key": answer["SecretAccessKey"],
                "token": answer["SessionToken"],
                "expiry_time": answer["Expiration"].isoformat(),
            }

        # Fetched on first use (building a provider makes no request), then
        # refreshed by botocore when less than 15 minutes remain.
        return DeferredRefreshableCredentials(refresh_using=fetch, method="sts-assume-role")

    # Object lock ----------------------------------------------------------------------

    def md5_params(self, data: bytes) -> dict:
        md5 = self.content_md5(data)
        return {"ContentMD5": md5} if md5 else {}

    def lock_params(self, data: bytes | None = None) -> dict:
        if self.retention is None:
            return self.md5_params(data) if data is not None else {}
        params = {
            "ObjectLockMode": self.retention.header_mode,
            "ObjectLockRetainUntilDate": self.retention.until,
        }
        return params | (self.md5_params(data) if data is not None else {})

    def lock_config(self):
        from locations.object_lock import BucketLock

        try:
            answer = self.call("GetObjectLockConfiguration")["ObjectLockConfiguration"]
        except StorageError as exc:
            if "ObjectLockConfigurationNotFound" in str(exc):
                return BucketLock(False)
            raise
        rule = answer.get("Rule", {}).get("DefaultRetention", {})
        days = rule.get("Days") or 365 * (rule.get("Years") or 0)
        return BucketLock(
            answer.get("ObjectLockEnabled") == "Enabled", rule.get("Mode", "").lower(), days
        )

    # Calls and errors -----------------------------------------------------------------

    def call(self, operation: str, key: str | None = None, **params):
        """Call an S3 operation on the bucket, translating every failure."""
        method = getattr(self.client, _snake(operation))
        if key is not None:
            params["Key"] = key
        try:
            return method(Bucket=self.bucket, **params)
        except StorageError:
            raise
        except Exception as exc:
            raise self._translate(exc, operation, params.get("Key")) from None

    def _translate(
        self, exc: Exception, operation: str, key: str | None, url: str | None = None
    ) -> StorageError:
        if isinstance(exc, botocore.exceptions.ClientError):
            return self._client_error(exc, operation, key)
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return BadCredentials("No credentials: set an access key and a secret key")
        found = network_error(exc, url or self.url, bool(self._ca.path))
        if found is not None:
            return found
        detail = scrub(str(exc), self._secrets)
        return StorageError(f"{operation} on bucket '{self.bucket}' failed: {detail}")

    def _client_error(self, exc, operation: str, key: str | None) -> StorageError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if operation == "AssumeRole":
            return _sts_error(code, scrub(error.get("Message", ""), self._secrets))
        found = s3_error(code, operation, self.bucket, key, status, self._config.region_name)
        if found is not None:
            return found
        message = scrub(str(error.get("Message") or ""), self._secrets)
        return StorageError(
            f"{operation} on bucket '{self.bucket}' failed: {code or status} {message}".strip()
        )

    # Provider -------------------------------------------------------------------------

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        return S3Writer(self, key, content_type)

    def open_read(self, key: str) -> BinaryIO:
        body = self.call("GetObject", key)["Body"]
        return stream(
            body.iter_chunks(READ_CHUNK),
            on_close=body.close,
            translate=lambda exc: self._translate(exc, "GetObject", key),
        )

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if not check_range(start, length):
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
            with contextlib.closing(response["Body"]) as body:
                return body.read()
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # the object ends before ``start``
            raise self._translate(exc, "GetObject", key) from None
        except Exception as exc:
            raise self._translate(exc, "GetObject", key) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        token = None
        while True:
            params = {"Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = self.call("ListObjectsV2", **params)
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item.get("LastModified"))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under ``prefix`` (one request per 1000)."""
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        folders, token = [], None
        while True:
            params = {"Prefix": prefix, "Delimiter": "/"}
            if token:
                params["ContinuationToken"] = token
            page = self.call("ListObjectsV2", **params)
            folders += [
                p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])
            ]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(folders)

    def delete(self, key: str) -> None:
        self.call("DeleteObject", key)

    def exists(self, key: str) -> bool:
        try:
            self.call("HeadObject", key)
        except NotFound:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            answer = self.call("DeleteObjects", Delete={"Objects": batch, "Quiet": True})
            for error in answer.get("Errors", []):
                if error.get("Code") == "AccessDenied":
                    raise AccessDenied(
                        f"Access denied to bucket '{self.bucket}': the credentials lack s3:DeleteObject"
                    )
                raise StorageError(
                    f"Could not delete '{error.get('Key')}' from bucket '{self.bucket}': {error.get('Code')}"
                )
        return len(keys)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        self._ca.close()


def _snake(operation: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in operation).lstrip("_")


def _sts_error(code: str, message: str) -> StorageError:
    if code in S3_CREDENTIAL_CODES:
        return BadCredentials(
            f"The base credentials used to assume the role were rejected by STS ({code})"
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return AccessDenied(
            "STS refused AssumeRole (AccessDenied): check that the role's trust policy allows "
            "this identity and requires this location's external ID"
        )
    if code in ("ValidationError", "MalformedPolicyDocument"):
        return Misconfigured(f"STS rejected the AssumeRole request ({code}): {message}")
    if code == "RegionDisabledException":
        return Misconfigured("STS is not enabled in this region (RegionDisabledException)")
    return StorageError(f"STS AssumeRole failed: {code} {message}".strip())
