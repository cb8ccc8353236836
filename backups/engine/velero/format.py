"""The files beside the archive, in Velero's shapes.

``velero-backup.json`` (the Backup object, plain JSON), the results and the
resource list (gzipped JSON), the log (gzipped text) and the empty lists of
volume snapshots, pod volume backups, item operations and volume info that a
backup without volume data has.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from backups.engine.filters import parse_selector
from backups.engine.velero.archive import FORMAT_VERSION

VELERO_NAMESPACE = "velero"
EMPTY_LIST_FILES = ("volumesnapshots", "podvolumebackups", "itemoperations", "volumeinfo")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(delta: timedelta) -> str:
    """A duration (whole seconds) as Go prints it: ``720h0m0s``, ``10m0s``, ``5s``."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def gz_json(doc) -> bytes:
    return gz(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())


class Results:
    """Errors and warnings, by where they happened: velero (the backup itself),
    cluster (cluster-scoped objects), or a namespace. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data = {
            kind: {"velero": [], "cluster": [], "namespaces": defaultdict(list)}
            for kind in ("errors", "warnings")
        }

    def _add(self, kind: str, message: str, namespace: str | None, cluster: bool) -> None:
        with self._lock:
            bucket = self._data[kind]
            if namespace:
                bucket["namespaces"][namespace].append(message)
            elif cluster:
                bucket["cluster"].append(message)
            else:
                bucket["velero"].append(message)

    def error(self, message: str, namespace: str | None = None, cluster: bool = False) -> None:
        self._add("errors", message, namespace, cluster)

    def warning(self, message: str, namespace: str | None = None, cluster: bool = False) -> None:
        self._add("warnings", message, namespace, cluster)

    def _count(self, kind: str) -> int:
        bucket = self._data[kind]
        return (
            len(bucket["velero"])
            + len(bucket["cluster"])
            + sum(len(v) for v in bucket["namespaces"].values())
        )

    @property
    def errors(self) -> int:
        return self._count("errors")

    @property
    def warnings(self) -> int:
        return self._count("warnings")

    def as_dict(self) -> dict:
        with self._lock:
            return {
                kind: {
                    "velero": list(bucket["velero"]),
                    "cluster": list(bucket["cluster"]),
                    "namespaces": {
                        ns: list(msgs) for ns, msgs in sorted(bucket["namespaces"].items())
                    },
                }
                for kind, bucket in self._data.items()
            }

    def messages(self, kind: str = "errors") -> list[str]:
        """Every message of one kind, with where it happened, for logs and tests."""
        doc = self.as_dict()[kind]
        found = list(doc["velero"]) + list(doc["cluster"])
        for ns, msgs in doc["namespaces"].items():
            found += [f"namespace {ns}: {m}" for m in msgs]
        return found


class ResourceList:
    """``"<apiVersion>/<Kind>"`` -> names (``ns/name`` or ``name``), sorted on output.

    The names wait as one UTF-8 buffer per type (NUL-separated: Kubernetes names hold
    no NUL), not as a string each: a backup of 300,000 objects keeps a few MiB for
    them rather than tens; ``gz()`` writes the file one type at a time."""

    def __init__(self):
        self._names: dict[str, bytearray] = defaultdict(bytearray)

    def add(self, gvk_key: str, names: list[str]) -> None:
        if names:
            buffer = self._names[gvk_key]
            buffer += "\0".join(names).encode("utf-8", "surrogateescape")
            buffer += b"\0"

    def names(self, gvk_key: str) -> list[str]:
        buffer = self._names.get(gvk_key) or b""
        return sorted(buffer.decode("utf-8", "surrogateescape").split("\0")[:-1])

    def as_dict(self) -> dict[str, list[str]]:
        return {key: self.names(key) for key in sorted(self._names) if self._names[key]}

    def gz(self) -> bytes:
        """The gzipped JSON of ``as_dict()``, made one type at a time."""
        parts = [
            json.dumps(key) + ":" + json.dumps(self.names(key), separators=(",", ":"))
            for key in sorted(self._names)
            if self._names[key]
        ]
        return gz(("{" + ",".join(parts) + "}").encode())

    def __len__(self) -> int:
        return sum(buffer.count(0) for buffer in self._names.values())


class LogBuffer:
    """The backup's log: timestamped lines, kept for the ``-logs.gz`` file."""

    def __init__(self):
        self.lines: list[str] = []

    def add(self, level: str, message: str) -> str:
        line = f"{rfc3339(datetime.now(UTC))} {level:<5} {message}"
        self.lines.append(line)
        return line

    def gz(self) -> bytes:
        return gz(("\n".join(self.lines) + "\n").encode())


# What Velero's server fills into a Backup's spec when it is left out
# (pkg/controller/backup_controller.go prepareBackupRequest, pkg/cmd/server/config).
CSI_SNAPSHOT_TIMEOUT = timedelta(minutes=10)
ITEM_OPERATION_TIMEOUT = timedelta(hours=4)
VOLUME_GROUP_LABEL_KEY = "velero.io/volume-group"

CLUSTER_LABEL = "palette.io/cluster-name"
SHA256_ANNOTATION = "palette.io/archive-sha256"


def backup_document(
    *,
    name: str,
    location_name: str,
    options,
    phase: str,
    started: datetime,
    expires: datetime,
    finished: datetime | None = None,
    version: dict | None = None,
    items_total: int = 0,
    items_done: int = 0,
    errors: int = 0,
    warnings: int = 0,
    failure_reason: str = "",
    schedule_name: str = "",
    cluster_name: str = "",
    archive_sha256: str = "",
    snapshot_timeout: timedelta | None = None,
    volume_counts: dict[str, int] | None = None,
) -> dict:
    """The Backup object Velero reads from ``velero-backup.json``.

    Besides Velero's own fields it carries, for a console that imports the
    bucket, the source cluster's name (a label) and the archive's sha256 (an
    annotation); Velero ignores both.

    The spec has every default Velero's server fills in (``velero backup describe``
    prints the fields left out as ``0s``), with the console's own values where it has
    one: ``csiSnapshotTimeout`` is how long the console waited for its snapshots
    (``snapshot_timeout``, for a backup with volume data; Velero's 10m0s otherwise).
    ``snapshotVolumes`` is false (no native snapshots) and ``snapshotMoveData`` false:
    Velero restores the console's kept CSI snapshots only from a backup that does not
    ask for its data mover (``volumes/velero_info.py``). ``defaultVolumesToFsBackup``
    says whether the console copied volumes' files by default (volume data in any mode
    but snapshot only); Velero cannot read those copies.
    """
    labels = {"velero.io/storage-location": location_name}
    if schedule_name:
        labels["velero.io/schedule-name"] = schedule_name
    if cluster_name:
        labels[CLUSTER_LABEL] = cluster_name
    annotations = {SHA256_ANNOTATION: archive_sha256} if archive_sha256 else {}
    if version:
        annotations |= {
            "velero.io/source-cluster-k8s-gitversion": version.get("gitVersion", ""),
            "velero.io/source-cluster-k8s-major-version": version.get("major", ""),
            "velero.io/source-cluster-k8s-minor-version": version.get("minor", ""),
        }
    spec: dict = {
        "metadata": {},
        "includedNamespaces": list(options.include_namespaces or []) or ["*"],
        "ttl": go_duration(options.ttl or timedelta(hours=720)),
        "storageLocation": location_name,
        "snapshotVolumes": False,
        "defaultVolumesToFsBackup": bool(options.include_disks)
        and options.volume_mode != "snapshot",
        "snapshotMoveData": False,
        "csiSnapshotTimeout": go_duration(
            snapshot_timeout if options.include_disks and snapshot_timeout else CSI_SNAPSHOT_TIMEOUT
        ),
        "itemOperationTimeout": go_duration(ITEM_OPERATION_TIMEOUT),
        "volumeGroupSnapshotLabelKey": VOLUME_GROUP_LABEL_KEY,
        "hooks": {},
    }
    if options.exclude_namespaces:
        spec["excludedNamespaces"] = list(options.exclude_namespaces)
    if options.include_resources:
        spec["includedResources"] = list(options.include_resources)
    if options.exclude_resources:
        spec["excludedResources"] = list(options.exclude_resources)
    # auto is Velero's null (the field left out); always/never are true/false.
    if options.cluster_resources in ("always", "never"):
        spec["includeClusterResources"] = options.cluster_resources == "always"
    if options.label_selector:
        spec["labelSelector"] = parse_selector(options.label_selector)
    status: dict = {
        "version": 1,
        "formatVersion": FORMAT_VERSION,
        "phase": phase,
        "startTimestamp": rfc3339(started),
        "expiration": rfc3339(expires),
        "progress": {"totalItems": items_total, "itemsBackedUp": items_done},
    }
    if finished:
        status["completionTimestamp"] = rfc3339(finished)
    if errors:
        status["errors"] = errors
    if warnings:
        status["warnings"] = warnings
    if failure_reason:
        status["failureReason"] = failure_reason
    status |= volume_counts or {}  # the CSI snapshots' counters (records.operation_counts)
    return {
        "kind": "Backup",
        "apiVersion": "velero.io/v1",
        "metadata": {
            "name": name,
            "namespace": VELERO_NAMESPACE,
            "creationTimestamp": rfc3339(started),
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": status,
    }


def backup_json(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()
