"""Where a location may be: the server's filesystem roots, who may place it, no overlaps.

- A filesystem location's directory must lie under one of the server's
  ``PALETTE_FILESYSTEM_ROOTS``, judged on its real path (symlinks resolved);
  a path with ``..`` in it is refused outright. The filesystem provider checks
  this again every time it is built, so a row that was changed behind the
  console's back is refused at use too.
- Only superusers create or change filesystem locations (they point at the
  server's own disk); everyone else gets a plain refusal.
- No two locations, of any provider and in any workspace, may share objects:
  the same store (endpoint), bucket or container, and prefixes of which one
  contains the other (etcd snapshots live beside the prefix, in
  ``<prefix>-etcd/``, and restic repositories in ``<prefix>-volumes-restic/``,
  so those areas count too); filesystem directories may not
  be nested.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from locations.providers.errors import Misconfigured
from locations.providers.filesystem import directory_under
from locations.providers.filesystem import inside as _inside

FILESYSTEM = "filesystem"


# Filesystem roots --------------------------------------------------------------------


def filesystem_roots() -> list[str]:
    """The real paths of the directories filesystem locations may be under."""
    return [os.path.realpath(root) for root in settings.PALETTE_FILESYSTEM_ROOTS]


def allowed_directory(path: str, roots: list[str] | None = None) -> str:
    """The real path of ``path`` when the server allows a location there (under one of
    ``roots``, by default the server's ``PALETTE_FILESYSTEM_ROOTS``); raises
    Misconfigured (with a message that says nothing about what is on the disk)."""
    return directory_under(path, filesystem_roots() if roots is None else roots)


# Who may place one ------------------------------------------------------------------


def refuse_unless_allowed(user, location) -> None:
    """Only superusers create filesystem locations, turn one into it or change one."""
    from locations.models import BackupLocation

    if user is not None and user.is_superuser:
        return
    was = None
    if location.pk:
        was = BackupLocation.objects.filter(pk=location.pk).values_list("provider", flat=True)
        was = was.first()
    if FILESYSTEM in (location.provider, was):
        raise ValidationError(
            "Only a superuser may create or change a local-directory location: it points at "
            "the server's own disk. Use an object store, or ask an administrator.",
            code="superuser_only",
        )


# Overlaps ---------------------------------------------------------------------------

DEFAULT_HOSTS = {
    "s3": "s3.amazonaws.com",
    "gcs": "storage.googleapis.com",
}


def _host_port(url: str, *, with_path: bool = False) -> str:
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:
        return url.lower()
    path = parts.path.strip("/").lower() if with_path else ""
    return f"{(parts.hostname or '').lower().rstrip('.')}:{port}/{path}".rstrip("/")


def store_of(location) -> tuple:
    """What identifies the store and bucket a location writes to."""
    provider = location.provider
    if provider == FILESYSTEM:
        return (FILESYSTEM,)
    if provider == "azure":
        from locations.providers.azure import parse_connection_string

        creds = location.credentials or {}
        conn = parse_connection_string(creds.get("connection_string") or "")
        account = (creds.get("account_name") or conn.get("accountname", "")).lower()
        url = location.endpoint_url or conn.get("blobendpoint") or ""
        # Azurite names the account in the path; Azure in the host name.
        where = _host_port(url, with_path=True) if url else f"{account}.blob.core.windows.net:443"
        return ("azure", where, location.bucket)
    family = "s3" if provider in ("s3", "minio") else provider
    url = location.endpoint_url
    return (family, _host_port(url) if url else DEFAULT_HOSTS.get(family, ""), location.bucket)


def _areas(prefix: str) -> list[str]:
    """The key prefixes a location writes under: its prefix, its etcd folder and its
    volume copies' restic repositories."""
    prefix = (prefix or "").strip("/")
    return [prefix, f"{prefix}-etcd", f"{prefix}-volumes-restic"] if prefix else [""]


def _nested(a: str, b: str) -> bool:
    """One folder path contains the other (segment-wise; '' contains everything)."""
    a_parts = [p for p in a.split("/") if p]
    b_parts = [p for p in b.split("/") if p]
    shorter = min(len(a_parts), len(b_parts))
    return a_parts[:shorter] == b_parts[:shorter]


def overlaps(a, b) -> bool:
    if a.provider == FILESYSTEM or b.provider == FILESYSTEM:
        if a.provider != b.provider:
            return False
        real_a, real_b = os.path.realpath(a.path), os.path.realpath(b.path)
        return _inside(real_a, real_b) or _inside(real_b, real_a)
    if store_of(a) != store_of(b):
        return False
    return any(_nested(x, y) for x in _areas(a.prefix) for y in _areas(b.prefix))


def overlapping(location):
    """Another location (any workspace) that shares objects with ``location``, or None."""
    from locations.models import BackupLocation

    others = BackupLocation.objects.exclude(pk=location.pk) if location.pk else None
    others = others if others is not None else BackupLocation.objects.all()
    if location.provider == FILESYSTEM:
        candidates = others.filter(provider=FILESYSTEM)
    else:
        candidates = others.exclude(provider=FILESYSTEM).filter(bucket=location.bucket)
    return next((other for other in candidates.iterator() if overlaps(location, other)), None)


def check(location) -> None:
    """Raise ValidationError (by field) when ``location`` may not be placed where it is."""
    if location.provider == FILESYSTEM:
        try:
            allowed_directory(location.path)
        except Misconfigured as exc:
            raise ValidationError({"path": str(exc)}) from None
    other = overlapping(location)
    if other is not None:
        field = "path" if location.provider == FILESYSTEM else "prefix"
        raise ValidationError(
            {
                field: "This overlaps another backup location's objects (the same "
                + ("directory, or one inside the other" if field == "path" else
                   "store, bucket and a prefix that contains or is inside its prefix")
                + "). Choose another "
                + ("directory." if field == "path" else "bucket or prefix.")
            }
        )  # fmt: skip
