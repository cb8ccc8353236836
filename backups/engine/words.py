"""Words for people: counts with the right plural, never "item(s)".

Pure functions (no Django), so the engine, the commands and the pages say it alike."""

from __future__ import annotations

import re

# Nouns whose plural is not noun + "s".
_PLURALS = {"child": "children", "person": "people", "status": "statuses"}


def plural(noun: str, n: int) -> str:
    """``noun`` as it reads after the number ``n``: 1 backup, 2 backups, 0 backups."""
    if n == 1:
        return noun
    head, _, last = noun.rpartition(" ")
    if last in _PLURALS:
        return f"{head} {_PLURALS[last]}".strip()
    if last.endswith(("s", "x", "ch", "sh")):
        return f"{noun}es"
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return f"{noun[:-1]}ies"
    return f"{noun}s"


def counted(n: int, noun: str) -> str:
    """``counted(1, "backup")`` -> "1 backup"; ``counted(3, "cluster")`` -> "3 clusters"."""
    return f"{n:,} {plural(noun, n)}"


def phase_words(phase: str) -> str:
    """A Velero phase name as words ("PartiallyFailed" -> "partially failed");
    a phase already written for people ("collecting namespaces") is left as it is."""
    if not phase or " " in phase or not phase[:1].isupper():
        return phase
    words = [w.lower() for w in re.findall(r"[A-Z][a-z]*|[a-z]+|\d+", phase)]
    return " ".join(words) if words else phase


def duration_words(seconds: float) -> str:
    """How long, for a setting: "30 days", "1 day 12 hours", "1 hour 30 minutes"."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        counted(n, unit) for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n
    ]
    return " ".join(parts) if parts else counted(seconds, "second")
