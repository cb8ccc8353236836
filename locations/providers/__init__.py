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


class RefusedProvider(Provider):
    """A location the server's policy refuses (a directory outside the roots, an
    endpoint the egress policy denies): every use raises the refusal, so each
    caller reports it as it reports any storage failure."""

    def __init__(self, error: StorageError):
        self.error = error

    def _refuse(self, *args, **kwargs):
        raise type(self.error)(str(self.error))

    open_write = open_read = read_range = list = list_folders = delete = exists = _refuse
    delete_prefix = _refuse
    set_retention = lock_config = _refuse

    def close(self) -> None:
        pass


def get_provider(location, *, fail_fast: bool = False, raw: bool = False) -> Provider:
    """The provider for ``location``; under an encrypting (saved) location it seals
    what it writes and opens what it reads, unless ``raw`` (validation, the tests'
    look at the bucket)."""
    provider = _provider(location, fail_fast=fail_fast)
    if raw or not getattr(location, "encrypt", False) or location.pk is None:
        return provider
    if isinstance(provider, RefusedProvider):
        return provider
    from backups.engine.storage.sealed import SealedProvider
    from locations.keys import Keyring

    keyring = Keyring(location)
    return SealedProvider(provider, keyring.current, keyring)


def _provider(location, *, fail_fast: bool = False) -> Provider:
    """The provider for ``location`` (a BackupLocation, saved or not).

    ``fail_fast`` shortens timeouts and retries: validation wants an answer in
    seconds; backups want to ride out a flaky network.
    Raises StorageError (e.g. Misconfigured) when the settings cannot work; a
    location the server's policy refuses gets a RefusedProvider, whose every use
    raises the refusal.
    """
    kind = location.provider
    if kind == "filesystem":
        from locations.providers.filesystem import FilesystemProvider

        try:
            return FilesystemProvider(location.path)
        except Misconfigured as exc:  # outside the server's roots
            return RefusedProvider(exc)
    try:
        check_egress(location)
    except Misconfigured as exc:
        return RefusedProvider(exc)
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


def endpoints_of(location) -> list[tuple[str, str]]:
    """(what, URL) of every address a store location makes the console connect to,
    beyond the providers' public defaults: its endpoint, an Azure connection
    string's blob endpoint, a GCS key's token_uri."""
    import json

    creds = location.credentials or {}
    found = [("store endpoint", location.endpoint_url)]
    if location.provider == "azure" and creds.get("connection_string"):
        from locations.providers.azure import parse_connection_string

        conn = parse_connection_string(creds["connection_string"])
        found.append(("blob endpoint", conn.get("blobendpoint", "")))
    if location.provider == "gcs" and creds.get("service_account_json"):
        try:
            info = json.loads(creds["service_account_json"])
        except ValueError:
            info = {}
        if isinstance(info, dict) and isinstance(info.get("token_uri"), str):
            found.append(("token_uri", info["token_uri"]))
    return [(what, url) for what, url in found if url]


def check_egress(location) -> None:
    """The server's egress policy (palette_site/egress.py), as a StorageError."""
    from palette_site.egress import EgressDenied, check_url

    for what, url in endpoints_of(location):
        try:
            check_url(url, what=what)
        except EgressDenied as exc:
            raise Misconfigured(str(exc)) from None
