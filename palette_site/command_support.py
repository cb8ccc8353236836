"""Small helpers shared by the management commands."""

from __future__ import annotations

import os

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

ROOT_WARNING = (
    "Running as root: a bug or a crafted input would then reach the whole machine. "
    "Run the console and its workers as an unprivileged user that owns only "
    "PALETTE_DATA_DIR (README: Running as an unprivileged user)."
)


def root_warning() -> str | None:
    """The warning to print when this process runs as root, else None."""
    return ROOT_WARNING if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def named(model, name: str, noun: str):
    """The ``model`` row called ``name`` (names are unique), or a CommandError a person can
    act on: "There is no <noun> named ..."."""
    row = model.objects.filter(name=name).first()
    if row is None:
        raise CommandError(f"There is no {noun} named {name!r}.")
    return row


def parsed(flag: str, parse, value):
    """``parse(value)``, or a CommandError "--flag: why" for a value it refuses (its
    ValueError, or a form field's ValidationError)."""
    try:
        return parse(value)
    except ValidationError as exc:
        raise CommandError(f"{flag}: {' '.join(exc.messages)}") from None
    except ValueError as exc:
        raise CommandError(f"{flag}: {exc}") from None


MAX_INPUT_FILE_BYTES = 1024 * 1024  # kubeconfigs, PEM, key files: a few kilobytes


def read_text(path: str | None, what: str) -> str:
    """The UTF-8 text of a file named on the command line ('' for none), or a
    CommandError naming the file: missing, unreadable, too large or not text."""
    from pathlib import Path

    if not path:
        return ""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read the {what} file {path}: {exc.strerror}.") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise CommandError(f"The {what} file {path} is larger than 1 MiB.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"The {what} file {path} is not UTF-8 text.") from None
