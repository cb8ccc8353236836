"""What the engine is given: plain dataclasses, built by the caller (the console builds
them from its rows in ``backups/engine_inputs.py``; a script builds them by hand).

Nothing here is a database row: the engine reads these and returns outcomes; it
never saves anything but objects in the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from backups.engine.kube.api import READ_TIMEOUT
from backups.engine.kube.client import CONNECT_TIMEOUT
from backups.engine.storage.base import Provider
from backups.engine.storage.layout import Layout

DEFAULT_TTL = timedelta(hours=720)  # Velero's default: 30 days


@dataclass(frozen=True)
class ClusterConnection:
    """How to reach one cluster's API server."""

    name: str
    kubeconfig: str = field(repr=False)  # self-contained (inline certificates, no exec)
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    # Called with every new ApiClient and the kubeconfig; may refuse (KubeconfigError) or
    # wrap the client's connection pool (the console's egress policy).
    guard: Callable[[object, str], None] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Store:
    """A location: the provider that reads and writes its objects, and where in it."""

    provider: Provider
    name: str  # the location's name (Velero's storage location)
    prefix: str = ""
    # The restic password of a namespace's repository (``volumes/restic.py``): volume
    # copies are deduplicated with restic when this is given and restic is installed,
    # else they are plain tar files.
    restic_password: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    @property
    def layout(self) -> Layout:
        return Layout(self.prefix)


@dataclass(frozen=True)
class VolumeSettings:
    """How the volume work runs (the server's settings, never a user's)."""

    mover_image: str = "busybox:1.36"  # needs sh, tar, dd (iflag=fullblock), du
    snapshot_timeout: float = 300.0  # seconds for a VolumeSnapshot to become ready
    mover_start_timeout: float = 180.0  # seconds for a mover pod to run
    idle_timeout: float = 120.0  # seconds without data before a stream counts as dead
    mover_deadline: int = 6 * 3600  # the mover pod's activeDeadlineSeconds
    restore_wait_timeout: float = 300.0  # seconds for a restored pod to run (post hooks)


@dataclass(frozen=True)
class BackupSpec:
    """What to back up (the options a person chose; Velero's Backup spec)."""

    include_namespaces: tuple[str, ...] = ()  # empty: every namespace
    exclude_namespaces: tuple[str, ...] = ()
    include_resources: tuple[str, ...] = ()  # empty: every type
    exclude_resources: tuple[str, ...] = ()
    cluster_resources: str = "auto"  # auto | always | never
    label_selector: str = ""
    ttl: timedelta = DEFAULT_TTL
    include_disks: bool = False
    # auto (snapshot and copy where a class exists, else copy) | snapshot |
    # snapshot_and_copy | copy; a storage class's policy (skip|snapshot|copy|
    # snapshot_and_copy) overrides it for that class's claims.
    volume_mode: str = "auto"
    volume_policy: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackupRequest:
    name: str
    cluster: ClusterConnection
    store: Store
    spec: BackupSpec = BackupSpec()
    schedule_name: str = ""  # the schedule that fired it (a label in velero-backup.json)
    # Labels every temporary object of this job (palette.io/operation), so that the
    # sweep can tell whose it is; empty: ``backup-<name>``.
    operation: str = ""
    volumes: VolumeSettings = VolumeSettings()


@dataclass(frozen=True)
class RestoreSpec:
    """What to restore, and how (Velero's Restore spec, plus the console's choices)."""

    include_namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    include_resources: tuple[str, ...] = ()
    exclude_resources: tuple[str, ...] = ()
    namespace_mapping: dict[str, str] = field(default_factory=dict)
    label_selector: str = ""
    cluster_resources: str = "auto"
    restore_pvs: bool = False
    preserve_node_ports: bool = False
    existing_policy: str = "none"  # none | update
    resource_modifiers: str = ""  # Velero's resource modifier rules (YAML text)
    storage_class_mapping: dict[str, str] = field(default_factory=dict)
    # Granular restore: only these items, each (resource-list type such as
    # ``apps/v1/Deployment``, namespace or "", name); empty: all the filters allow.
    chosen_items: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class RestoreRequest:
    name: str
    backup_name: str
    cluster: ClusterConnection  # the target
    store: Store  # the backup's location
    spec: RestoreSpec = RestoreSpec()
    backup_sha256: str = ""  # recorded at backup time; checked before anything is restored
    preview: bool = False  # a server-side dry run: nothing changes
    operation: str = ""  # as BackupRequest.operation; empty: ``restore-<name>``
    volumes: VolumeSettings = VolumeSettings()


@dataclass(frozen=True)
class EtcdEndpoint:
    """How to reach a cluster's etcd: endpoints and TLS material (PEM text)."""

    cluster_name: str
    endpoint: str  # one URL, or several separated by commas
    ca: str = ""
    cert: str = ""
    key: str = field(default="", repr=False)
    # The etcd cluster ID recorded at registration: every snapshot and restore refuses
    # a member that answers with another one (None: not recorded, not checked).
    expected_cluster_id: int | None = None


@dataclass(frozen=True)
class SnapshotRequest:
    name: str
    etcd: EtcdEndpoint
    store: Store

    @property
    def key(self) -> str:
        return self.store.layout.etcd_file(self.etcd.cluster_name, self.name)


@dataclass(frozen=True)
class LocalTarget:
    """A control plane the console runs itself (given by the server's settings, never by
    a user): where its etcd keeps its data, and how to stop and start its components.

    ``control`` is a command; the engine appends ``start|stop|ready <name> <component>``
    (components: etcd, kube-apiserver, kube-controller-manager). ``ready`` exits 0 when
    the component answers.
    """

    name: str
    endpoint: str
    data_dir: Path
    member_name: str
    initial_cluster: str
    peer_url: str
    etcdutl: str
    control: tuple[str, ...]


@dataclass(frozen=True)
class EtcdRestoreRequest:
    snapshot_name: str
    object_key: str
    sha256: str  # empty: the snapshot did not complete, and is refused
    etcd: EtcdEndpoint
    store: Store
    target: LocalTarget | None  # None: the console cannot act on this cluster's etcd hosts
