"""The volume steps of a backup's run (``run.py``): the parts that talk to
``volumes/backup.py``, kept apart so that the run reads as its flow."""

from __future__ import annotations

import json

from backups.engine.filters import Scope
from backups.engine.kube.api import ClusterUnreachable, KubeError
from backups.engine.velero.archive import ArchiveWriter, ItemRecords
from backups.engine.velero.format import EMPTY_LIST_FILES, gz_json
from backups.engine.volumes.records import item_operation
from backups.engine.volumes.velero_info import volume_infos

VSC = "volumesnapshotcontents.snapshot.storage.k8s.io"


class BackupFailed(Exception):
    """Stops the backup; the message is the reason shown to people."""


class VolumeSteps:
    """Mixed into ``BackupExecutor``: uses its ``volumes``, ``resources``, ``done``,
    ``per_type``, ``archived_volumes`` and ``name``."""

    def _snapshot_contents(self, archive: ArchiveWriter, discovery, scope: Scope) -> None:
        """The contents of kept snapshots (cluster-scoped: not listed with a namespace
        filter), labelled with the backup's name as Velero writes them."""
        rt = discovery.find(VSC)
        if self.volumes is None or rt is None or scope.wants_type(rt):
            return
        contents = self._volume_step(self.volumes.kept_contents) or []
        out: list[bytes] = []
        made = ItemRecords(VSC, rt.version, archive.mtime)
        for content in contents:
            made.add(out, "", content["metadata"]["name"], json.dumps(content).encode())
        if out:
            names = [c["metadata"]["name"] for c in contents]
            archive.write_items(rt.gvk_key, made, names, b"".join(out))
            self.resources.add(rt.gvk_key, names)
            self.done += len(contents)
            self.per_type[VSC] += len(contents)

    def _volume_step(self, step, quiet: bool = False):
        """A step of the volume work; an unreachable cluster fails the backup."""
        try:
            return step()
        except ClusterUnreachable as exc:
            if quiet:
                return None
            raise BackupFailed(str(exc)) from None
        except KubeError as exc:
            if quiet:
                return None
            raise BackupFailed(f"The volume work stopped: {exc}.") from None

    def _discard_volumes(self) -> None:
        if self.volumes is not None:
            self._volume_step(self.volumes.discard, quiet=True)

    def _volume_files(self) -> dict[str, bytes]:
        """Velero's volume files (a record per PV in ``volumeinfo``, also without disks:
        ``archived_volumes`` are the PVs the archive holds) and, with disks, the console's."""
        files = {kind: gz_json([]) for kind in EMPTY_LIST_FILES}
        entries = self.volumes.entries if self.volumes is not None else None
        files["volumeinfo"] = gz_json(volume_infos(entries, self.archived_volumes))
        if entries is not None:
            operations = [item_operation(e, self.name, "") for e in entries]
            files["itemoperations"] = gz_json([op for op in operations if op])
            files["volumecopies"] = gz_json([e.as_json() for e in entries])
        return files
