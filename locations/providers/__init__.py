"""Storage providers: one module per store behind ``base.Provider``.

``get_provider(location)`` builds the provider for a BackupLocation. SDKs are
imported only when their provider is used, so a filesystem-only install pays
for none of them.
"""

from __future__ import annotations

from backups.engine.storage.base import (
    PART_SIZE,
    AccessDenied,
    BadCredentials,
    BucketMissing,
    ClockSkew,
    NotFound,
    ObjectInfo,
    Provider,
    StorageError,
    TLSFailure,
    Unreachable,
    Writer,
)
from locations.providers.errors import Inconsistent, InvalidBucketName, Misconfigured

__all__ = [
    "PART_SIZE",
    "AccessDenied",
    "BadCredentials",
    "BucketMissing",
    "ClockSkew",
    "Inconsistent",
    "InvalidBucketName",
    "Misconfigured",
    "NotFound",
    "ObjectInfo",
    "Provider",
    "StorageError",
    "TLSFailure",
    "Unreachable",
    "Writer",
    "get_provider",
]


def get_provider(location, *, fail_fast: bool = False) -> Provider:
    """The provider for ``location`` (a BackupLocation, saved or not).

    ``fail_fast`` shortens timeouts and retries: validation wants an answer in
    seconds; backups want to ride out a flaky network.
    Raises StorageError (e.g. Misconfigured) when the settings cannot work.
    """
    kind = location.provider
    if kind == "filesystem":
        from locations.providers.filesystem import FilesystemProvider

        return FilesystemProvider(location.path)
    if kind == "s3":
        from locations.providers.s3 import S3Provider

        return S3Provider(location, fail_fast=fail_fast)
    if kind == "minio":
        from locations.providers.minio import MinioProvider

        return MinioProvider(location, fail_fast=fail_fast)
    if kind == "gcs":
        from locations.providers.gcs import GCSProvider

        return GCSProvider(location, fail_fast=fail_fast)
    if kind == "azure":
        from locations.providers.azure import AzureProvider

        return AzureProvider(location, fail_fast=fail_fast)
    raise Misconfigured(f"Unknown storage provider {kind!r}")
