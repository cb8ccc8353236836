"""Showing a stored backup's item to people: as YAML, Secrets' values masked.

Reading the backup is the engine's (``backups.engine.velero.reader``)."""

from __future__ import annotations

import yaml

from backups.engine.storage.base import NotFound
from backups.engine.storage.layout import Layout
from backups.engine.velero import reader
from locations.providers import get_provider

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


# Granular restore: items chosen in the content browser ------------------------------------

# More than this is a namespace or a kind: the browser offers those instead (and a form
# of thousands of fields is refused by Django before it reaches a view).
MAX_CHOSEN = 500
SEPARATOR = "|"  # no type, namespace or name of Kubernetes holds one


def item_value(type_name: str, namespace: str, name: str) -> str:
    """A chosen item as the browser's checkbox sends it."""
    return SEPARATOR.join((type_name, namespace, name))


def chosen_items(values: list[str], listing: dict[str, list[str]]) -> list[list[str]]:
    """The items posted (``item_value``), checked against the backup's resource list:
    ``[[type, namespace, name], ...]`` in order, without repeats. ValueError, with a
    sentence to show, for one the backup does not hold or too many."""
    found: list[list[str]] = []
    seen, entries = set(), {}
    for value in values:
        parts = value.split(SEPARATOR)
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise ValueError("A chosen item is not one the content browser offers.")
        type_name, namespace, name = parts
        entry = f"{namespace}/{name}" if namespace else name
        if type_name not in entries:
            entries[type_name] = set(listing.get(type_name) or ())
        if entry not in entries[type_name]:
            raise ValueError(f"{type_name} {entry[:300]} is not in this backup.")
        if (type_name, namespace, name) not in seen:
            seen.add((type_name, namespace, name))
            found.append([type_name, namespace, name])
    if len(found) > MAX_CHOSEN:
        raise ValueError(
            f"Choose at most {MAX_CHOSEN} items; for more, restore a whole namespace or kind."
        )
    return found


def checked_items(backup, values: list[str]) -> list[list[str]]:
    """``chosen_items`` against the stored backup's resource list (the wizard's and the
    restore command's one check). ValueError to show; StorageError from the store."""
    try:
        with get_provider(backup.location) as provider:
            listing = reader.resource_list(provider, Layout(backup.location.prefix), backup.name)
    except NotFound:
        raise ValueError(
            "This backup has no resource list, so single items cannot be chosen."
        ) from None
    return chosen_items(values, listing)


def stored_contents(backup) -> tuple[dict, list[dict]]:
    """The results and the resource list of a stored backup (the page's and the API's);
    StorageError or ArchiveError when the location cannot give them."""
    layout = Layout(backup.location.prefix)
    with get_provider(backup.location) as provider:
        results = reader.results(provider, layout, backup.name)
        return results, reader.contents(provider, layout, backup.name)


def kind_filter(type_name: str) -> str:
    """The wizard's resource filter for a resource-list type: ``Deployment.apps``."""
    api_version, _, kind = type_name.rpartition("/")
    group = api_version.rpartition("/")[0]
    return f"{kind}.{group}" if group else kind


# The content browser: a page of a backup's items ---------------------------------------

MAX_FILTER = 253  # the longest Kubernetes name


def catalogue(backup, provider):
    """The backup's ``Catalogue`` (its items, its index), cached per process under all
    that names this backup, its archive's checksum included: only a view that already
    checked the person may see ``backup`` calls this. Raises StorageError, ArchiveError."""
    from backups.engine.storage.layout import Layout
    from backups.engine.velero import catalogue as listing

    location = backup.location
    key = ("backup", backup.pk, location.pk, location.prefix, backup.name, backup.sha256)
    return listing.load(provider, Layout(location.prefix), backup.name, key, backup.sha256)


def page_filter(query) -> dict:
    """The content browser's filter and page number from a query string (``kind``,
    ``namespace``, ``name``, ``page``); ValueError, with a sentence to show, for one
    that cannot be."""
    found = {}
    for field in ("kind", "namespace", "name"):
        value = query.get(field, "").strip()
        if len(value) > MAX_FILTER or SEPARATOR in value:
            raise ValueError(f"The {field} filter is not a Kubernetes name.")
        found[field] = value
    page = query.get("page", "1").strip() or "1"
    if not page.isdigit() or len(page) > 9:
        raise ValueError("The page is not a number.")
    found["number"] = int(page)
    return found
