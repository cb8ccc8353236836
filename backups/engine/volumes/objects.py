"""The Kubernetes objects the volume work creates, and the choices made about them: pure.

Every object a backup or restore creates only for its own work (a mover pod, a claim
made from a snapshot, a snapshot taken only to copy from) carries the label
``palette.io/operation`` naming the job, so that the job, the reaper and the periodic
sweep find and remove it (``cleanup.py``). A snapshot kept as part of a backup carries
``palette.io/backup`` instead, and goes when the backup is deleted.

Commands run in the mover (Debian's or Docker Hub's busybox: ``sh``, ``tar``, ``dd``,
``du``): the bytes are a plain tar stream passed through ``dd`` in blocks of ``BLOCK``
bytes. ``dd`` makes the writes to the exec's stdout large (busybox ``tar`` and ``tee``
write 1 KiB at a time, and every small write travelled as its own frame through the
container runtime, the kubelet and the API server: that was the cost of a copy), and
its record counts on stderr say how many bytes the mover sent or received, which the
worker compares with its own count (``records_agree``). The worker hashes the stream as
it passes; the sha256 is recorded with the copy and checked again at restore. Each hop
of the exec is TLS (or loopback to the runtime), which already rejects altered bytes.
"""

from __future__ import annotations

import hashlib
import re

OPERATION_LABEL = "palette.io/operation"
BACKUP_LABEL = "palette.io/backup"
VELERO_CLASS_LABEL = "velero.io/csi-volumesnapshot-class"
VELERO_BACKUP_LABEL = "velero.io/backup-name"
VELERO_SNAPSHOT_NAME = "velero.io/volume-snapshot-name"
EXCLUDES_ANNOTATION = "backup.velero.io/backup-volumes-excludes"
SNAPSHOT_GROUP, SNAPSHOT_VERSION = "snapshot.storage.k8s.io", "v1"
SNAPSHOT_API = f"{SNAPSHOT_GROUP}/{SNAPSHOT_VERSION}"
MOUNT = "/palette/data"
MOVER_CONTAINER = "mover"

# Modes a backup may ask for; "auto" is snapshot-and-copy where a class exists, else copy.
AUTO, SNAPSHOT, COPY, BOTH, SKIP = "auto", "snapshot", "copy", "snapshot_and_copy", "skip"
MODES = (AUTO, SNAPSHOT, BOTH, COPY)
POLICY_MODES = (SKIP, SNAPSHOT, COPY, BOTH)

BLOCK = 1 << 20  # dd's block: what the mover writes to the exec at once
_DD = f"dd bs={BLOCK} iflag=fullblock"
BACKUP_SCRIPT = f"""set -o pipefail
cd {MOUNT} || exit 90
tar -cf - . | {_DD}"""
RESTORE_SCRIPT = f"""set -o pipefail
{_DD} | tar -xf - -C {MOUNT}"""
SIZE_COMMAND = ["du", "-sk", MOUNT]


def dd_agrees(stderr: str, direction: str, size: int) -> bool:
    """Whether dd's report on stderr (its last ``records in`` or ``records out`` line,
    ``direction`` "in" or "out") counts ``size`` bytes. With ``iflag=fullblock`` only the
    last block can be partial; where dd also prints ``N bytes ... copied`` (Docker Hub's
    busybox does, Debian's does not) the count must be exact."""
    found = re.findall(rf"^(\d+)\+(\d+) records {direction}$", stderr, re.MULTILINE)
    if not found:
        return False  # dd did not finish
    full, partial = int(found[-1][0]), int(found[-1][1])
    if (full, partial) != (size // BLOCK, 1 if size % BLOCK else 0):
        return False
    exact = re.findall(r"^(\d+) bytes \(.*\) copied", stderr, re.MULTILINE)
    return not exact or int(exact[-1]) == size


def without_records(stderr: str) -> str:
    """stderr without dd's record lines (they are counts, not reasons)."""
    lines = stderr.splitlines()
    noise = r"\d+\+\d+ records (in|out)|\d+ bytes \(.*\) copied.*"
    return "\n".join(line for line in lines if not re.fullmatch(noise, line))


def label_value(text: str) -> str:
    """``text`` as a valid label value (63 characters; cut ones end with a hash)."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "-", text).strip("-_.")
    if len(clean) <= 63:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return clean[:56].rstrip("-_.") + "-" + digest


def choose_snapshot_class(classes: list[dict], driver: str) -> tuple[str, str]:
    """(class name, "") as Velero chooses: the driver's class labelled
    ``velero.io/csi-volumesnapshot-class=true``, else the driver's only class; or
    ("", why not)."""
    mine = [c for c in classes if c.get("driver") == driver]
    labelled = [
        c for c in mine if ((c.get("metadata") or {}).get("labels") or {}).get(VELERO_CLASS_LABEL)
        == "true"
    ]  # fmt: skip
    if len(labelled) >= 1:
        return labelled[0]["metadata"]["name"], ""
    if len(mine) == 1:
        return mine[0]["metadata"]["name"], ""
    if not mine:
        return "", f"no VolumeSnapshotClass for driver {driver}"
    names = ", ".join(sorted(c["metadata"]["name"] for c in mine))
    return "", (
        f"driver {driver} has several VolumeSnapshotClasses ({names}) and none is labelled "
        f"{VELERO_CLASS_LABEL}=true"
    )


def decide_method(mode: str, policy: str | None, has_class: bool) -> tuple[bool, bool, str]:
    """(snapshot?, copy?, note) for one claim: the storage class's policy wins over the
    backup's mode; a snapshot asked for without a class falls back to a copy."""
    wanted = policy or mode
    if wanted == SKIP:
        return False, False, "skipped by the storage class policy"
    if wanted == AUTO:
        wanted = BOTH if has_class else COPY
    snapshot = wanted in (SNAPSHOT, BOTH)
    copy = wanted in (COPY, BOTH)
    if snapshot and not has_class:
        return False, True, "no snapshot class for its driver: copied instead"
    return snapshot, copy, ""


def excluded_volumes(pod: dict) -> set[str]:
    """The pod's volume names listed in ``backup.velero.io/backup-volumes-excludes``."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(EXCLUDES_ANNOTATION, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def pod_claims(pod: dict) -> dict[str, str]:
    """volume name -> claim name, for the pod's persistentVolumeClaim volumes."""
    found = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            found[volume.get("name", "")] = claim
    return found


def mover_pod(
    namespace: str,
    claim: str,
    *,
    operation: str,
    image: str,
    read_only: bool,
    deadline: int,
    node: str = "",
) -> dict:
    """A short-lived busybox pod mounting ``claim`` at ``MOUNT`` (read-only for a backup).

    It only sleeps: the work comes in over exec. ``activeDeadlineSeconds`` ends it even
    if every cleanup is lost."""
    spec: dict = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": deadline,
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "tolerations": [{"operator": "Exists"}],
        "containers": [
            {
                "name": MOVER_CONTAINER,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", str(deadline)],
                "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False},
                "volumeMounts": [{"name": "data", "mountPath": MOUNT, "readOnly": read_only}],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
        ],
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "palette-mover-",
            "namespace": namespace,
            "labels": {OPERATION_LABEL: operation, "app.kubernetes.io/managed-by": "palette"},
        },
        "spec": spec,
    }


def snapshot_object(
    namespace: str, claim: str, snapshot_class: str, *, labels: dict[str, str]
) -> dict:
    return {
        "apiVersion": SNAPSHOT_API,
        "kind": "VolumeSnapshot",
        "metadata": {
            "generateName": f"velero-{claim[:40]}-",
            "namespace": namespace,
            "labels": labels,
        },
        "spec": {
            "volumeSnapshotClassName": snapshot_class,
            "source": {"persistentVolumeClaimName": claim},
        },
    }


def claim_from_snapshot(claim: dict, snapshot: str, *, operation: str) -> dict:
    """A temporary claim holding a snapshot's data (to copy from), like ``claim``."""
    spec = claim.get("spec") or {}
    meta = claim.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "generateName": f"palette-{meta.get('name', 'claim')[:40]}-",
            "namespace": meta.get("namespace", ""),
            "labels": {OPERATION_LABEL: operation},
        },
        "spec": {
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "storageClassName": spec.get("storageClassName"),
            "resources": {"requests": dict((spec.get("resources") or {}).get("requests") or {})},
            "dataSource": {"apiGroup": SNAPSHOT_GROUP, "kind": "VolumeSnapshot", "name": snapshot},
        },
    }


def parse_quantity(text: str) -> int:
    """Bytes of a Kubernetes quantity such as ``64Mi`` or ``1G`` (0 when unreadable)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGTPE]i?|k|m)?\s*", str(text or ""))
    if not match:
        return 0
    number, unit = float(match.group(1)), match.group(2) or ""
    powers = {"K": 1, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
    if unit == "m":
        return int(number / 1000)
    if not unit:
        return int(number)
    base = 1024 if unit.endswith("i") else 1000
    return int(number * base ** powers[unit[0]])
