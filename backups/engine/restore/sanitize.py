"""What each object loses before it is created again, and how an existing one is compared.

Pure functions on the JSON dicts of the archive, with Velero's rules
(Velero's restore item actions, read for facts):

* every object: ``metadata`` loses generateName, selfLink, uid, resourceVersion,
  generation, creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds,
  ownerReferences and (beyond Velero, which patches them back afterwards)
  managedFields; ``status`` goes; labels ``velero.io/backup-name`` and
  ``velero.io/restore-name`` are added (values cut to a valid label as Velero
  does: 57 characters and 6 of a sha256);
* namespaced objects move to their target namespace (namespace mapping), and so do
  the references inside objects (``references.py``: the ones Velero rewrites, a PV's
  ``claimRef.namespace`` and binding subjects, and beyond Velero every
  ``namespace``/``namespaces`` field and ``kubernetes.io/metadata.name`` selector);
  a Namespace is renamed, with its ``kubernetes.io/metadata.name`` label;
* Pod: ``nodeName`` and ``priority`` cleared, legacy service-account token volumes
  (``<sa>-token-*``) and their mounts dropped;
* Service: ``clusterIP``/``clusterIPs`` cleared unless headless (``None``); node ports
  and the health-check node port dropped unless ``preserve_node_ports``. (Velero
  keeps node ports it can tell were set by hand; we drop them all, so that a copy
  restored next to its original does not fail on "port already allocated", and say
  so on the Service: ``unlike_velero.py``.)
* Job: the ``controller-uid`` selector and template labels go;
* PersistentVolumeClaim: binding, provisioner and selected-node annotations go,
  and ``volumeName`` when its volume will be provisioned anew;
* PersistentVolume: ``claimRef.uid``/``resourceVersion`` and binding annotations go;
* ServiceAccount: references to legacy ``<name>-token-*`` secrets go;
* Secret of type service-account-token (kept ones): the token, CA and uid go, for
  the token controller to fill again.

Comparing with an object that already exists (``differences``): the restore
compares only what the backup's sanitized object sets. A field the cluster has
and the backup does not (server defaults, status, uid, fields controllers add)
is not a difference; a field the backup sets must have the same value (lists
compared whole, item by item, with the same rule inside each item; an empty
value equals an absent one). The restore labels and a few annotations that
controllers rewrite (a Deployment's revision) are ignored. The data of
ConfigMaps and Secrets is compared exactly: a key the cluster has and the backup
lacks is a difference (except in service-account token secrets, which their
controller fills). ``merge_patch`` builds the JSON merge patch that policy
``update`` sends: the backup's object, plus the removal of such extra keys, so
that a patched object compares equal.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from backups.engine.restore import references, unlike_velero

BACKUP_LABEL = "velero.io/backup-name"
RESTORE_LABEL = "velero.io/restore-name"
RESTORE_LABELS = frozenset((BACKUP_LABEL, RESTORE_LABEL))
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

STRIPPED_METADATA = (
    "generateName",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "managedFields",
)
PVC_ANNOTATIONS = (
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
    "velero.io/data-upload-name",
)
PV_ANNOTATIONS = (
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "pv.kubernetes.io/provisioned-by",
)
JOB_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 (a type name)
# Annotations that controllers rewrite on their own; not a difference.
VOLATILE_ANNOTATIONS = frozenset(
    (
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "endpoints.kubernetes.io/last-change-trigger-time",
    )
)
# (group-resource, top-level field) compared key for key, both ways.
EXACT_MAPS = frozenset((("configmaps", "data"), ("configmaps", "binaryData"), ("secrets", "data")))


def label_value(text: str) -> str:
    """``text`` as a label value (at most 63 characters): longer names are cut as
    Velero cuts them, to 57 characters and the first 6 hex digits of their sha256."""
    if len(text) <= 63:
        return text
    return text[:57] + hashlib.sha256(text.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class SanitizeOptions:
    backup_name: str
    restore_name: str
    namespace_mapping: dict[str, str] = field(default_factory=dict)
    preserve_node_ports: bool = False
    # PVs that are not restored but provisioned anew: claims drop ``volumeName``
    reprovisioned_pvs: frozenset[str] = frozenset()
    # PersistentVolumes are not restored at all (``restore_pvs`` off): claims say so
    pvs_left_out: bool = False
    # resource modifiers (``modifiers.Modifiers``), applied after sanitizing
    modifiers: object = None

    def target(self, namespace: str) -> str:
        return self.namespace_mapping.get(namespace, namespace) if namespace else namespace


def sanitize(
    group_resource: str, obj: dict, options: SanitizeOptions, notes: list[str] | None = None
) -> dict:
    """Make ``obj`` (changed in place, and returned) ready to be created in the target;
    the namespace references it rewrote (``references.py``) are added to ``notes``."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    for key in STRIPPED_METADATA:
        meta.pop(key, None)
    obj.pop("status", None)
    if meta.get("namespace"):
        meta["namespace"] = options.target(meta["namespace"])
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = meta["labels"] = {}
    labels[BACKUP_LABEL] = label_value(options.backup_name)
    labels[RESTORE_LABEL] = label_value(options.restore_name)
    rule = _RULES.get(group_resource)
    said = ""
    if notes is not None and group_resource == "services" and not options.preserve_node_ports:
        said = unlike_velero.node_port_note(unlike_velero.node_ports(obj))
    if rule is not None:
        rule(obj, options)
    if notes is not None and group_resource == "persistentvolumeclaims" and options.pvs_left_out:
        said = unlike_velero.claim_note(obj)
    if said:
        notes.append(said)
    rewrites = references.rewrite(group_resource, obj, options.namespace_mapping)
    if rewrites and notes is not None:
        notes.append("Namespace references follow the mapping: " + "; ".join(rewrites) + ".")
    return obj


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _annotations(obj: dict) -> dict:
    found = obj["metadata"].get("annotations")
    return found if isinstance(found, dict) else {}


def _pod(obj: dict, options: SanitizeOptions) -> None:
    spec = _spec(obj)
    spec.pop("nodeName", None)
    spec.pop("priority", None)
    prefix = (spec.get("serviceAccountName") or spec.get("serviceAccount") or "") + "-token-"
    if isinstance(spec.get("volumes"), list):
        spec["volumes"] = [v for v in spec["volumes"] if not _named(v, prefix)]
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(kind) or ():
            if isinstance(container.get("volumeMounts"), list):
                container["volumeMounts"] = [
                    m for m in container["volumeMounts"] if not _named(m, prefix)
                ]


def _named(entry, prefix: str) -> bool:
    return isinstance(entry, dict) and str(entry.get("name", "")).startswith(prefix)


def _service(obj: dict, options: SanitizeOptions) -> None:
    spec = _spec(obj)
    if spec.get("clusterIP") != "None":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    if not options.preserve_node_ports:
        for port in spec.get("ports") or ():
            if isinstance(port, dict):
                port.pop("nodePort", None)
        spec.pop("healthCheckNodePort", None)


def _job(obj: dict, options: SanitizeOptions) -> None:
    spec = _spec(obj)
    selector = spec.get("selector") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for labels in (selector.get("matchLabels") or {}, template_labels):
        for key in JOB_UID_LABELS:
            labels.pop(key, None)


def _pvc(obj: dict, options: SanitizeOptions) -> None:
    annotations = _annotations(obj)
    for key in PVC_ANNOTATIONS:
        annotations.pop(key, None)
    spec = _spec(obj)
    if spec.get("volumeName") in options.reprovisioned_pvs:
        spec.pop("volumeName", None)


def _pv(obj: dict, options: SanitizeOptions) -> None:
    annotations = _annotations(obj)
    for key in PV_ANNOTATIONS:
        annotations.pop(key, None)
    claim = _spec(obj).get("claimRef")
    if isinstance(claim, dict):
        claim.pop("uid", None)
        claim.pop("resourceVersion", None)


def _service_account(obj: dict, options: SanitizeOptions) -> None:
    prefix = obj["metadata"].get("name", "") + "-token-"
    if isinstance(obj.get("secrets"), list):
        obj["secrets"] = [s for s in obj["secrets"] if not _named(s, prefix)]


def _secret(obj: dict, options: SanitizeOptions) -> None:
    if obj.get("type") != SA_TOKEN_TYPE:
        return
    _annotations(obj).pop("kubernetes.io/service-account.uid", None)
    data = obj.get("data")
    if isinstance(data, dict):
        data.pop("token", None)
        data.pop("ca.crt", None)


def _namespace(obj: dict, options: SanitizeOptions) -> None:
    meta = obj["metadata"]
    name = options.target(meta.get("name", ""))
    meta["name"] = name
    meta.pop("namespace", None)
    if NAMESPACE_NAME_LABEL in meta["labels"]:
        meta["labels"][NAMESPACE_NAME_LABEL] = name


_RULES = {
    "pods": _pod,
    "services": _service,
    "jobs.batch": _job,
    "persistentvolumeclaims": _pvc,
    "persistentvolumes": _pv,
    "serviceaccounts": _service_account,
    "secrets": _secret,
    "namespaces": _namespace,
}


def is_legacy_token_secret(obj: dict) -> bool:
    """A token secret the token controller made for a service account (``<sa>-token-*``):
    Velero does not restore those, the target's controller makes its own."""
    if obj.get("type") != SA_TOKEN_TYPE:
        return False
    meta = obj.get("metadata") or {}
    account = (meta.get("annotations") or {}).get("kubernetes.io/service-account.name", "")
    return bool(account) and str(meta.get("name", "")).startswith(f"{account}-token-")


# --- comparing with what exists -----------------------------------------------------------


def _is_empty(value) -> bool:
    return value is None or value == {} or value == [] or value == ""


def _key_path(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def _walk(want, have, path: str, found: list[str], limit: int) -> None:
    if len(found) >= limit:
        return
    if isinstance(want, dict):
        if not isinstance(have, dict):
            if not (_is_empty(want) and _is_empty(have)):
                found.append(path)
            return
        for key, value in want.items():
            if key not in have:
                if not _is_empty(value):
                    found.append(_key_path(path, key))
            else:
                _walk(value, have[key], _key_path(path, key), found, limit)
    elif isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            if not (_is_empty(want) and _is_empty(have)):
                found.append(path)
            return
        for index, (a, b) in enumerate(zip(want, have, strict=True)):
            _walk(a, b, f"{path}[{index}]", found, limit)
    elif want != have or isinstance(want, bool) != isinstance(have, bool):
        if not (_is_empty(want) and _is_empty(have)):
            found.append(path)


def _comparable(group_resource: str, obj: dict) -> dict:
    """A shallow copy without what is never compared (see the module's docstring)."""
    meta = dict(obj.get("metadata") or {})
    for key in STRIPPED_METADATA:
        meta.pop(key, None)
    meta["labels"] = {
        k: v for k, v in (meta.get("labels") or {}).items() if k not in RESTORE_LABELS
    }
    meta["annotations"] = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in VOLATILE_ANNOTATIONS
    }
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {"metadata": meta, **rest}


def _exact_maps(group_resource: str, desired: dict) -> list[str]:
    """The top-level maps compared key for key (not a token secret: its controller
    adds the token)."""
    if group_resource == "secrets" and desired.get("type") == SA_TOKEN_TYPE:
        return []
    return [top for resource, top in EXACT_MAPS if resource == group_resource]


def differences(group_resource: str, desired: dict, live: dict, limit: int = 20) -> list[str]:
    """The paths where ``live`` differs from the sanitized backup object ``desired``
    (at most ``limit``); empty when they are equal in the sense above."""
    want = _comparable(group_resource, desired)
    have = _comparable(group_resource, live)
    found: list[str] = []
    _walk(want, have, "", found, limit)
    for top in _exact_maps(group_resource, desired):
        if isinstance(have.get(top), dict):
            extra = set(have[top]) - set(want.get(top) or {})
            found += [_key_path(top, key) for key in sorted(extra)][: max(0, limit - len(found))]
    return found


def merge_patch(group_resource: str, desired: dict, live: dict) -> dict:
    """The JSON merge patch that makes ``live`` compare equal to ``desired``."""
    patch = {k: v for k, v in desired.items() if k != "status"}
    for top in _exact_maps(group_resource, desired):
        if isinstance(live.get(top), dict):
            wanted = desired.get(top) or {}
            extra = {key: None for key in live[top] if key not in wanted}
            if extra:
                patch[top] = {**wanted, **extra}
    return patch


def describe_paths(paths: list[str], shown: int = 4) -> str:
    """``spec.replicas, data.x and 3 more`` for messages."""
    if len(paths) <= shown:
        return ", ".join(paths)
    return ", ".join(paths[:shown]) + f" and {len(paths) - shown} more"
