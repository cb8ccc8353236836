"""Showing a stored backup's item to people: as YAML, Secrets' values masked.

Reading the backup is the engine's (``backups.engine.velero.reader``)."""

from __future__ import annotations

import yaml

MASK = "••••••••"


def mask_secret(obj: dict) -> dict:
    """A Secret as a page may show it: keys kept, every value masked (also inside
    the last-applied annotation, which repeats the data in clear)."""
    if obj.get("kind") != "Secret":
        return obj
    masked = dict(obj)
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            masked[field] = dict.fromkeys(obj[field], MASK)
    metadata = dict(obj.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = MASK
        metadata["annotations"] = annotations
        masked["metadata"] = metadata
    return masked


def as_yaml(obj: dict) -> str:
    return yaml.safe_dump(
        mask_secret(obj), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
