"""ClusterRoleBindings of a mapped restore: copies for the mapped subjects, never a patch.

A ClusterRoleBinding is cluster-scoped, so a restore with ``a -> b`` often finds it
already in the target (the original, still granting ``a``'s ServiceAccounts).
Leaving it alone (policy ``none``) gives ``b``'s accounts no cluster permissions;
patching it (``update``) moves the subjects to ``b`` and takes the permissions
away from ``a``. Neither is what a person copying an application wants. So an
existing binding whose subjects the mapping moved is never patched: the restore
creates ``<name>-<target namespace>``, the same role reference and labels, holding
the mapped subjects only, and leaves the original as it is. A binding that does
not exist yet is created as the sanitizer made it (with the mapped subjects).
"""

from __future__ import annotations

import json

from backups.engine.restore.sanitize import describe_paths, differences, merge_patch
from backups.engine.restore.target import MERGE_PATCH

CLUSTER_ROLE_BINDINGS = "clusterrolebindings.rbac.authorization.k8s.io"
MAX_NAME = 253


def mapped_subjects(raw: bytes | dict, mapping: dict[str, str]) -> list[dict]:
    """The subjects of the backup's binding whose namespace the mapping moves, as they
    will be in the target."""
    obj = json.loads(raw) if isinstance(raw, bytes | str) else raw
    found = []
    for subject in obj.get("subjects") or ():
        if isinstance(subject, dict) and subject.get("namespace") in mapping:
            found.append({**subject, "namespace": mapping[subject["namespace"]]})
    return found


def copy_name(name: str, subjects: list[dict]) -> str:
    """``<name>-<target namespace>`` (the first one, when subjects go to several)."""
    suffix = "-" + sorted(s["namespace"] for s in subjects)[0]
    return name[: MAX_NAME - len(suffix)] + suffix


def copy_of(body: dict, subjects: list[dict]) -> dict:
    """The copy to create: the restored binding's role and labels, the mapped subjects."""
    meta = body.get("metadata") or {}
    name = copy_name(str(meta.get("name", "")), subjects)
    copy_meta = {"name": name, "labels": dict(meta.get("labels") or {})}
    if meta.get("annotations"):
        copy_meta["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": body.get("apiVersion", "rbac.authorization.k8s.io/v1"),
        "kind": "ClusterRoleBinding",
        "metadata": copy_meta,
        "roleRef": body.get("roleRef"),
        "subjects": subjects,
    }


def needs_copy(group_resource: str, options, raw: bytes) -> list[dict]:
    """The mapped subjects when this item is a binding that gets a copy if it exists."""
    if group_resource != CLUSTER_ROLE_BINDINGS or options is None:
        return []
    if not options.namespace_mapping or not raw:
        return []
    return mapped_subjects(raw, options.namespace_mapping)


def apply_copy(applier, item, path: str, body: dict, subjects: list[dict]):
    """An existing ClusterRoleBinding of a mapped restore: create (or check) its copy.
    ``applier`` is the restore's ``apply.Applier``; the answer an ``apply.Applied``."""
    # apply.py calls this module: its names are imported here, when first needed
    from backups.engine.restore.apply import (
        CREATED,
        FAILED,
        SKIPPED_EQUAL,
        SKIPPED_EXISTS,
        UPDATED,
        Applied,
    )

    copy = copy_of(body, subjects)
    name = copy["metadata"]["name"]
    collection = path.rsplit("/", 1)[0]
    kept = f"The ClusterRoleBinding {item.name} exists in the target and is left unchanged"
    accounts = ", ".join(f"{s.get('namespace')}/{s.get('name')}" for s in subjects)
    response = applier.target.request("POST", collection, copy, applier._query())
    if response.ok:
        verb = "would be created" if applier.dry_run else "was created"
        return Applied(
            item, CREATED, f"{kept}; its copy {name} {verb} for the mapped subjects {accounts}."
        )
    if response.status != 409:
        failed = f"{kept}; creating its copy {name} failed: {response.describe()}"
        return Applied(item, FAILED, failed)
    live = applier.target.request("GET", f"{collection}/{name}").doc()
    paths = differences(item.group_resource, copy, live)
    if not paths:
        return Applied(item, SKIPPED_EQUAL, f"{kept}; its copy {name} exists and matches.")
    if not applier.update:
        return Applied(
            item,
            SKIPPED_EXISTS,
            f"{kept}; its copy {name} exists and differs at {describe_paths(paths)} "
            "(existing-resource policy: none).",
            warning=True,
        )
    patch = merge_patch(item.group_resource, copy, live)
    patched = applier.target.request(
        "PATCH", f"{collection}/{name}", patch, applier._query(), MERGE_PATCH
    )
    if patched.ok:
        return Applied(item, UPDATED, f"{kept}; its copy {name} was patched to match.")
    return Applied(item, FAILED, f"{kept}; patching its copy {name} failed: {patched.describe()}")
