"""Backup names and durations: small pure functions with their rules in one place."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.utils import timezone

# Backup names become Kubernetes object names and label values (velero.io/backup-name),
# so: a DNS label of at most 63 characters.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DURATION_RE = re.compile(r"(\d+)(h|m|s)")


def backup_name(prefix: str, cluster: str, at: datetime | None = None) -> str:
    """``<prefix>-<cluster>-<YYYYMMDDhhmmss>``, Palette's naming."""
    at = (at or timezone.now()).astimezone(UTC)
    return f"{prefix}-{cluster}-{at:%Y%m%d%H%M%S}"


def free_name(rows, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when ``rows`` (the location's backups or
    snapshots) already hold it: two started within the same second both get one."""
    taken = set(rows.filter(name__startswith=name).values_list("name", flat=True))
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be a backup name, or None when it can."""
    if not NAME_RE.match(name):
        return (
            "Use at most 63 lower-case letters, digits and dashes, starting and ending "
            "with a letter or digit."
        )
    return None


# The longest duration a backup may be kept: longer would overflow dates (and is a typo).
MAX_DURATION = timedelta(days=100 * 365)
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Go-style durations as Velero takes them: ``720h``, ``1h30m``, ``90m``, ``0s``;
    at most MAX_DURATION (100 years)."""
    text = text.strip()
    if not text or len(text) > 40 or _DURATION_RE.sub("", text):
        raise ValueError(f"{text[:40]!r} is not a duration like 720h, 24h or 1h30m")
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_RE.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days // 365} years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, in Velero's style (``720h0m0s``)."""
    seconds = int(value.total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60}m{seconds % 60}s"


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


def parse_mapping(text: str) -> dict[str, str]:
    """``"a=b, c=d"`` (or one pair a line) -> ``{"a": "b", "c": "d"}``; raises ValueError
    naming the bad pair. Targets must be valid namespace names."""
    mapping: dict[str, str] = {}
    for pair in split_list(text):
        source, sep, target = (part.strip() for part in pair.partition("="))
        if not sep or not source or not target:
            raise ValueError(f"{pair!r} is not source=target")
        if not NAME_RE.match(target):
            raise ValueError(f"{target!r} is not a valid namespace name")
        if source in mapping:
            raise ValueError(f"{source!r} is mapped twice")
        mapping[source] = target
    return mapping


SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
VOLUME_POLICY_MODES = ("skip", "snapshot", "copy", "snapshot_and_copy")


def _pairs(text: str, what: str, check) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in split_list(text):
        source, sep, target = (part.strip() for part in pair.partition("="))
        if not sep or not source or not target:
            raise ValueError(f"{pair!r} is not {what}")
        for name in (source, target) if check is None else (source,):
            if len(name) > 253 or not SUBDOMAIN_RE.match(name):
                raise ValueError(f"{name!r} is not a valid storage class name")
        if check is not None:
            check(target)
        if source in found:
            raise ValueError(f"{source!r} is given twice")
        found[source] = target
    return found


def parse_class_mapping(text: str) -> dict[str, str]:
    """``"standard=fast, slow=cheap"`` -> storage class in the backup -> class in the
    target; raises ValueError naming the bad pair."""
    return _pairs(text, "class=class", None)


def parse_volume_policy(text: str) -> dict[str, str]:
    """``"local-path=copy, scratch=skip"`` -> storage class -> what to do with its claims
    (skip, snapshot, copy or snapshot_and_copy); raises ValueError naming the bad pair."""

    def mode(value: str) -> None:
        if value not in VOLUME_POLICY_MODES:
            raise ValueError(f"{value!r} is not one of {', '.join(VOLUME_POLICY_MODES)}")

    return _pairs(text, "class=mode", mode)


def format_pairs(mapping: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((mapping or {}).items()))


def mapping_warnings(
    mapping: dict[str, str], in_backup: list[str], included: list[str] | None = None
) -> list[str]:
    """What a namespace mapping does that the user probably did not mean: a source
    the backup does not hold (it maps nothing), a source outside the chosen namespaces,
    and two namespaces that would land in one."""
    warnings = []
    held = set(in_backup)
    for source in sorted(mapping):
        if held and source not in held:
            warnings.append(
                f"{source} is not in the backup, so its mapping to {mapping[source]} maps nothing."
            )
        elif included and source not in included:
            warnings.append(
                f"{source} is not among the chosen namespaces, so its mapping does nothing."
            )
    landing: dict[str, list[str]] = {}
    restored = included or sorted(held) or sorted(mapping)
    for namespace in sorted(set(restored) | set(mapping)):
        if held and namespace not in held:
            continue
        landing.setdefault(mapping.get(namespace, namespace), []).append(namespace)
    for target, sources in sorted(landing.items()):
        if len(sources) > 1:
            names = ", ".join(sources[:-1]) + f" and {sources[-1]}"
            warnings.append(f"{names} would be restored into the same namespace, {target}.")
    return warnings
