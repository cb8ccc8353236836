"""Every job the console runs, with the one lifecycle they share (``base.py``).

Pages, commands and schedules start jobs through the ``start_*`` functions;
Celery tasks call ``<Kind>Job.run(pk)``; ``registry.JOBS`` lists the kinds.
"""

from .backup import BackupJob, delete_backup, start_backup
from .base import Job, JobRefused, Outcome
from .etcd import EtcdRestoreJob, SnapshotJob, start_etcd_restore, start_snapshot
from .registry import JOBS, job_of, reap, run_and_wait
from .restore import RestoreJob, confirm_preview, rerun_preview, start_restore
