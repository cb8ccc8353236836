"""Words for people: counts with the right plural, never "item(s)".

Pure functions (no Django), so the engine, the commands and the pages say it alike."""

from __future__ import annotations

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
