"""A restore's resource list, as Velero writes it: ``apiVersion/Kind`` -> the sorted
``ns/name(action)`` of every item the restore handled.

Made at the end from the plan's items (each carries its ``action`` once applied), one
type at a time, so that a restore of 300,000 objects does not keep 300,000 strings for
it while it runs.
"""

from __future__ import annotations

import json
from collections import defaultdict

from backups.engine.restore.plan import Plan, item_path_key
from backups.engine.velero.format import gz


def resource_list_gz(plan: Plan | None) -> bytes:
    by_type: dict[str, list] = defaultdict(list)
    for group in plan.groups if plan is not None else ():
        for item in group.items:
            if item.action:
                by_type[item.served_as or f"{item.api_version}/{item.kind}"].append(item)
    parts = []
    for key in sorted(by_type):
        names = sorted(f"{item_path_key(i)}({i.action})" for i in by_type.pop(key))
        parts.append(json.dumps(key) + ":" + json.dumps(names, separators=(",", ":")))
    return gz(("{" + ",".join(parts) + "}").encode())
