"""Azure Blob Storage through azure-storage-blob; the location's bucket is the container.

Credentials, in order: ``connection_string``; ``account_name`` + ``account_key``;
``tenant_id`` + ``client_id`` + ``client_secret`` (a service principal, through
azure-identity); ``account_name`` + ``sas_token``. ``endpoint_url`` overrides the
account URL (Azurite: ``http://127.0.0.1:10000/devstoreaccount1``). Large objects
go up as 8 MiB staged blocks committed on close, and come down in 4 MiB ranges.
"""

from __future__ import annotations

import base64
import contextlib
import re
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from azure.core import exceptions as az
from azure.storage.blob import (
    BlobBlock,
    BlobPrefix,
    BlobServiceClient,
    ContentSettings,
    ExponentialRetry,
    LinearRetry,
)

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

GET_SIZE = 4 * 1024 * 1024
DATA_ACTIONS = {
    "write": "permission to write blobs (blobs/write)",
    "read": "permission to read blobs (blobs/read)",
    "list": "permission to list blobs (blobs/read)",
    "delete": "permission to delete blobs (blobs/delete)",
}


class AzureWriter(PartWriter):
    def __init__(self, provider: AzureProvider, key: str, content_type: str):
        super().__init__(provider, key, content_type)
        self._blob = provider.container.get_blob_client(key)
        self._settings = ContentSettings(content_type=content_type)
        self._upload = uuid.uuid4().hex
        self._blocks: list[BlobBlock] = []

    def _put_whole(self, data: bytes) -> None:
        with self._p.translated("write", self._key):
            self._blob.upload_blob(
                data, length=len(data), overwrite=True, content_settings=self._settings
            )

    def _begin(self) -> None:
        """Nothing to start: blocks are staged against the blob's name."""

    def _put_part(self, number: int, data: bytes) -> None:
        # Block IDs must have one length within a blob; the upload's own prefix
        # keeps a concurrent writer's blocks apart.
        block_id = base64.b64encode(f"{self._upload}-{number:06d}".encode()).decode()
        with self._p.translated("write", self._key):
            self._blob.stage_block(block_id, data, length=len(data))
        self._blocks.append(BlobBlock(block_id=block_id))

    def _commit(self) -> None:
        with self._p.translated("write", self._key):
            self._blob.commit_block_list(self._blocks, content_settings=self._settings)

    def _cancel(self) -> None:
        """Uncommitted blocks never form a blob; Azure discards them within a week."""


def parse_connection_string(text: str) -> dict[str, str]:
    parts = (item.split("=", 1) for item in text.strip().split(";") if "=" in item)
    return {key.strip().lower(): value.strip() for key, value in parts}


class AzureProvider(Translated, Provider):
    def __init__(self, location, *, fail_fast: bool = False):
        self.container_name = location.bucket
        creds = location.credentials or {}
        self._ca = CAFile(location.ca_bundle)
        options = {
            # The SDK's default waits 15 s, then 18 s... before retrying: fine for a
            # backup, far too slow for a person waiting on the Validate button.
            "retry_policy": LinearRetry(backoff=0.5, random_jitter_range=0.2, retry_total=1)
            if fail_fast
            else ExponentialRetry(initial_backoff=2, increment_base=3, retry_total=5),
            "connection_verify": self._ca.verify,
            "max_single_get_size": GET_SIZE,
            "max_chunk_get_size": GET_SIZE,
            "connection_timeout": 5 if fail_fast else 20,
            "read_timeout": 30 if fail_fast else 120,
        }
        conn = parse_connection_string(creds.get("connection_string") or "")
        account = creds.get("account_name") or conn.get("accountname", "")
        key = creds.get("account_key") or conn.get("accountkey")
        sas = (creds.get("sas_token") or conn.get("sharedaccesssignature") or "").lstrip("?")
        self._secrets = [key, sas, creds.get("client_secret"), creds.get("connection_string")]
        self.url = (
            location.endpoint_url
            or conn.get("blobendpoint")
            or (account and f"https://{account}.blob.core.windows.net")
            or ""
        ).rstrip("/")
        if not self.url:
            raise Misconfigured(
                "Set the storage account name (or a connection string, or the endpoint URL)"
            )
        if key:
            credential = {"account_name": account or _account_from(self.url), "account_key": key}
        elif creds.get("client_secret"):
            credential = self._service_principal(creds)
        elif sas:
            credential = sas
        else:
            raise Misconfigured(
                "Set the account key, a connection string, or a service principal "
                "(tenant ID, client ID and client secret)"
            )
        self.service = BlobServiceClient(self.url, credential=credential, **options)
        self.container = self.service.get_container_client(self.container_name)

    def _service_principal(self, creds: dict):
        from azure.identity import ClientSecretCredential

        missing = [k for k in ("tenant_id", "client_id", "client_secret") if not creds.get(k)]
        if missing:
            raise Misconfigured(f"The service principal needs {', '.join(missing)}")
        return ClientSecretCredential(
            creds["tenant_id"],
            creds["client_id"],
            creds["client_secret"],
            connection_verify=self._ca.verify,
        )

    # Errors ---------------------------------------------------------------------------

    def _translate(self, exc: Exception, action: str, key: str | None) -> StorageError:
        code = getattr(exc, "error_code", None) or ""
        code = str(getattr(code, "value", code))  # the SDK's StorageErrorCode enum
        status = getattr(exc, "status_code", None)
        text = scrub(str(getattr(exc, "message", "") or exc), self._secrets)
        aad = re.search(r"AADSTS\d+", text)
        if aad:
            return BadCredentials(
                f"Azure AD rejected the service principal ({aad.group(0)}): check the tenant ID, "
                "client ID and client secret"
            )
        if code == "ContainerNotFound" or (status == 404 and not key):
            return BucketMissing(f"Container '{self.container_name}' does not exist")
        if code == "BlobNotFound" or status == 404:
            return NotFound(f"Blob '{key}' does not exist in container '{self.container_name}'")
        if code == "AuthenticationFailed" or isinstance(exc, az.ClientAuthenticationError):
            if "date header" in text.lower() or "request time" in text.lower():
                return ClockSkew(
                    "The clock of this machine and Azure's differ by more than 15 minutes "
                    "(AuthenticationFailed: request date): synchronise this machine's clock (NTP)"
                )
            if status == 403 and code.startswith("Authorization"):
                return self._denied(action)
            return self._bad_key()
        if code == "AuthorizationFailure" and "failed to authenticate" in text.lower():
            # Azurite's answer to a bad signature (Azure says AuthenticationFailed).
            return self._bad_key()
        if code.startswith("Authorization") or code == "InsufficientAccountPermissions":
            return self._denied(action)
        if code == "InvalidResourceName" or code == "OutOfRangeInput":
            return Misconfigured(f"Azure rejects the container name '{self.container_name}'")
        found = network_error(exc, self.url, bool(self._ca.path))
        if found is not None:
            return found
        return StorageError(
            f"Cannot {action} in container '{self.container_name}': {code or status or ''} "
            f"{text.splitlines()[0] if text else type(exc).__name__}".strip()
        )

    @staticmethod
    def _bad_key() -> BadCredentials:
        return BadCredentials(
            "The account key (or SAS token) was rejected: the request signature does not "
            "match (AuthenticationFailed)"
        )

    def _denied(self, action: str) -> AccessDenied:
        return AccessDenied(
            f"Access denied to container '{self.container_name}': the credentials lack "
            f"{DATA_ACTIONS.get(action, action)}"
        )

    # Provider -------------------------------------------------------------------------

    def open_write(self, key: str, content_type: str = "application/octet-stream") -> Writer:
        return AzureWriter(self, key, content_type)

    def open_read(self, key: str) -> BinaryIO:
        with self.translated("read", key):
            download = self.container.download_blob(key, max_concurrency=1)
        return stream(
            download.chunks(),
            translate=lambda exc: self._translate(exc, "read", key),
        )

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if not check_range(start, length):
            return b""
        try:
            download = self.container.download_blob(
                key, offset=start, length=length, max_concurrency=1
            )
            return download.readall()
        except az.HttpResponseError as exc:
            if exc.status_code == 416:
                return b""  # the object ends before ``start``
            raise self._translate(exc, "read", key) from None
        except Exception as exc:
            raise self._translate(exc, "read", key) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self.translated("list"):
            for blob in self.container.list_blobs(name_starts_with=prefix or None):
                yield ObjectInfo(blob.name, blob.size or 0, blob.last_modified)

    def list_folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under ``prefix``."""
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        with self.translated("list"):
            items = self.container.walk_blobs(name_starts_with=prefix or None, delimiter="/")
            return sorted(
                item.name[len(prefix) :].rstrip("/")
                for item in items
                if isinstance(item, BlobPrefix)
            )

    def delete(self, key: str) -> None:
        with self.translated("delete", key), contextlib.suppress(az.ResourceNotFoundError):
            self.container.delete_blob(key)

    def exists(self, key: str) -> bool:
        with self.translated("read", key):
            return self.container.get_blob_client(key).exists()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.service.close()
        self._ca.close()


def _account_from(url: str) -> str:
    """The account name in an account URL: Azurite's path, or Azure's host name."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path.strip("/")
    return path.split("/")[0] if path else parts.hostname.split(".")[0]
