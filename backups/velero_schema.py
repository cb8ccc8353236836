"""The part of a ``velero-backup.json`` that sync reads, as a strict schema.

A bucket is input like any other: a tenant, or anyone who can write to the store,
may put a crafted document there. Decoding with msgspec checks types, counts and
lengths before anything reaches the database; a document that does not fit is
refused with the reason (and sync skips that backup, not the location).
Fields sync does not read are ignored, so real Velero documents always fit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# Kubernetes object names (DNS subdomains): what Velero itself accepts as a backup name.
OBJECT_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z"
# Namespaces and resources as Velero lists them, globs included ("kube-*", "*",
# "deployments.apps"): one token, no spaces or control characters.
WORD = r"^[^\s\x00-\x1f\x7f]{1,253}\Z"
# Printable text without control characters (no CR/LF to forge log lines or headers).
PRINTABLE = r"^[^\x00-\x1f\x7f]*\Z"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=OBJECT_NAME)]
Token = Annotated[str, msgspec.Meta(max_length=253, pattern=WORD)]
Tokens = Annotated[list[Token], msgspec.Meta(max_length=10_000)]
Text = Annotated[str, msgspec.Meta(max_length=1024, pattern=PRINTABLE)]
# Label values become cluster names (253 characters at most in the console).
LabelValue = Annotated[str, msgspec.Meta(max_length=253, pattern=PRINTABLE)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]


class Metadata(msgspec.Struct):
    name: Name
    labels: Annotated[dict[Text, LabelValue], msgspec.Meta(max_length=256)] | None = None
    annotations: dict[str, str] | None = None


class Spec(msgspec.Struct, rename="camel"):
    included_namespaces: Tokens | None = None
    excluded_namespaces: Tokens | None = None
    included_resources: Tokens | None = None
    excluded_resources: Tokens | None = None
    include_cluster_resources: bool | None = None
    storage_location: Token | None = None
    ttl: Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[0-9hms.]*\Z")] | None = None


class Progress(msgspec.Struct, rename="camel"):
    total_items: Count | None = None
    items_backed_up: Count | None = None


class Status(msgspec.Struct, rename="camel"):
    phase: Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[A-Za-z]*\Z")] | None = None
    start_timestamp: Timestamp | None = None
    completion_timestamp: Timestamp | None = None
    expiration: Timestamp | None = None
    progress: Progress | None = None
    errors: Count | None = None
    warnings: Count | None = None


class VeleroBackup(msgspec.Struct):
    metadata: Metadata
    spec: Spec = msgspec.field(default_factory=Spec)
    status: Status = msgspec.field(default_factory=Status)


# A velero-backup.json is a few kilobytes; a bigger one is refused before decoding.
MAX_DOCUMENT_BYTES = 1024 * 1024
_decoder = msgspec.json.Decoder(VeleroBackup)


def decode(raw: bytes | dict) -> VeleroBackup:
    """The document (JSON bytes, or already parsed), or ValueError (msgspec's
    ValidationError is one) saying which field is wrong."""
    if isinstance(raw, dict):
        return msgspec.convert(raw, VeleroBackup)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
    return _decoder.decode(raw)


def annotation(doc: VeleroBackup, key: str, pattern: str, what: str) -> str:
    """One annotation sync copies into a column: empty when absent, ValueError when
    it does not look like ``what``."""
    import re

    value = (doc.metadata.annotations or {}).get(key, "")
    if value and not re.fullmatch(pattern, value):
        raise ValueError(f"annotation {key} is not {what}")
    return value
