"""Volume data: hooks, CSI snapshots, copies through a mover pod, and their restore.

``backup.py`` and ``restore.py`` are driven by the backup and restore runs; ``objects.py``
(what is created, pure), ``snapshots.py``, ``mover.py`` (the byte streams over exec,
``kube/exec.py``), ``hooks.py``, ``records.py`` (Velero's volume records and ours) and
``cleanup.py`` (removal by label) do the parts.
"""
