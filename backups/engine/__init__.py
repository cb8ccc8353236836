"""The backup engine: Velero-compatible backups and restores of Kubernetes resources, and
etcd snapshots. It knows nothing of Django, the console's apps or its models
(``tests/unit/test_engine_imports.py`` fails if it imports any of them): it is given
plain dataclasses (``inputs.py``) and callbacks, writes only to the store it is given,
and returns plain outcomes. The console builds the inputs from its rows in
``backups/engine_inputs.py``; ``benchmarks/engine_standalone.py`` builds them by hand.

Entry points (none raises for a cluster or store failure; each returns its outcome):

- ``backup.run.run_backup(request: BackupRequest, *, progress, log, should_stop)``
  -> ``BackupOutcome``
- ``restore.run.run_restore(request: RestoreRequest, *, progress, log, record,
  should_stop)`` -> ``RestoreOutcome``
- ``etcd.snapshot.take_snapshot(request: SnapshotRequest, *, progress, log,
  should_stop)`` -> ``SnapshotOutcome``
- ``etcd.restore.restore_locally(request: EtcdRestoreRequest, *, log, should_stop)``
  -> ``RestoreResult``
- ``etcd.verify.verify_snapshot(provider, key, sha256, etcdutl)`` and
  ``etcd.runbook.runbook(snapshot, etcd=, members=, download_url=)``: checks and the
  guided restore, no job.

Callbacks, all called on the caller's thread:

- ``progress(done: int, total: int, phase: str)``: a few times a second at most;
  ``total`` is 0 while unknown.
- ``log(line: str)``: one line of the job's log.
- ``record(results: list[ItemResult])``: a restore's per-item outcomes, in batches.
- ``volume(entry: VolumeEntry)`` and ``hook(report: HookReport)`` (backups and restores
  with volume data, optional): a volume's progress and result, a hook's exit code and output.
- ``should_stop() -> bool``: asked at every safe point (between pages, tar records,
  restore groups, snapshot chunks). When it says yes the job aborts its uploads,
  deletes what it wrote for this job, and its outcome's phase is "Cancelled".

Where things are: ``kube/`` (client from a kubeconfig, raw GETs, discovery, list
pages), ``backup/``, ``restore/``, ``etcd/``, ``storage/`` (the store interface
every provider implements, its errors, the layout of a location), ``velero/`` (the
archive and the files beside it, and the one reader of a stored backup),
``filters.py`` (namespace/resource/label filters shared by backups and restores),
``volumes/`` (volume data: snapshots, copies through a mover pod over exec, hooks).
"""
