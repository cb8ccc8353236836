"""The backups app's models: one module per kind of thing."""

from .backup import Backup, Schedule
from .etcd import EtcdPolicy, EtcdRestore, EtcdSnapshot
from .modifiers import ResourceModifierSet
from .operation import ACTIVE_STATUSES, FINAL_STATUSES, Operation, Status
from .options import BackupOptions, ClusterResources
from .restore import Restore, RestoreItem
from .run import BackupRun
from .volume import HookResult, VolumeResult
