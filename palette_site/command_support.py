"""Small helpers shared by the management commands."""

from __future__ import annotations

from django.core.management.base import CommandError


def named(model, name: str, noun: str):
    """The ``model`` row called ``name`` (names are unique), or a CommandError a person can
    act on: "There is no <noun> named ..."."""
    row = model.objects.filter(name=name).first()
    if row is None:
        raise CommandError(f"There is no {noun} named {name!r}.")
    return row
