"""Where things go inside a location: Velero's object-store layout, in one place.

Under ``<prefix>/`` only Velero's top-level folders may exist (Velero marks a
location Unavailable otherwise). etcd snapshots therefore live under a sibling
prefix, ``<prefix>-etcd/<cluster>/`` (``etcd-snapshots/<cluster>/`` when the
location has no prefix; Velero would then flag that folder, so give locations
that hold etcd snapshots a prefix), and so do the restic repositories of
deduplicated volume copies, ``<prefix>-volumes-restic/<namespace>/``.
"""

from __future__ import annotations

VELERO_TOP_LEVEL = ("backups", "restores", "restic", "kopia", "metadata", "plugins")


class Layout:
    def __init__(self, prefix: str = ""):
        self.prefix = prefix.strip("/")

    def _join(self, *parts: str) -> str:
        return "/".join(part.strip("/") for part in (self.prefix, *parts) if part)

    # Backups ---------------------------------------------------------------------------

    @property
    def backups_dir(self) -> str:
        return self._join("backups") + "/"

    def backup_dir(self, name: str) -> str:
        return self._join("backups", name) + "/"

    def backup_file(self, name: str, kind: str) -> str:
        """``kind`` is one of: metadata, archive, logs, results, resource-list,
        volumesnapshots, podvolumebackups, itemoperations, volumeinfo; the console's
        own volumecopies and archive-index (``velero/index.py``)."""
        files = {
            "metadata": "velero-backup.json",
            "archive": f"{name}.tar.gz",
            "logs": f"{name}-logs.gz",
            "results": f"{name}-results.gz",
            "resource-list": f"{name}-resource-list.json.gz",
            "volumesnapshots": f"{name}-volumesnapshots.json.gz",
            "podvolumebackups": f"{name}-podvolumebackups.json.gz",
            "itemoperations": f"{name}-itemoperations.json.gz",
            "volumeinfo": f"{name}-volumeinfo.json.gz",
            # the console's own (Velero ignores files it does not know here)
            "volumecopies": f"{name}-palette-volumes.json.gz",
            "archive-index": f"{name}-palette-index.json.gz",
        }
        return self._join("backups", name, files[kind])

    # Restores --------------------------------------------------------------------------

    def volume_copy(self, name: str, namespace: str, claim: str) -> str:
        """A volume's copy: a plain tar of the claim's files."""
        return self._join("backups", name, "volumes", namespace, f"{claim}.tar")

    @property
    def restic_root(self) -> str:
        """Where the deduplicated copies' restic repositories are, one per namespace
        (``<root>/<namespace>/``): beside the prefix, as etcd snapshots are, since Velero
        refuses a location with unknown folders under it (``volumes-restic/`` at the
        bucket's root when the location has no prefix)."""
        return f"{self.prefix}-volumes-restic" if self.prefix else "volumes-restic"

    def restore_file(self, name: str, kind: str) -> str:
        """``kind``: logs, results or resource-list."""
        files = {
            "logs": f"restore-{name}-logs.gz",
            "results": f"restore-{name}-results.gz",
            "resource-list": f"restore-{name}-resource-list.json.gz",
        }
        return self._join("restores", name, files[kind])

    # etcd snapshots (beside, never inside, Velero's folders) -------------------------

    @property
    def etcd_root(self) -> str:
        return f"{self.prefix}-etcd" if self.prefix else "etcd-snapshots"

    def etcd_file(self, cluster: str, name: str) -> str:
        return f"{self.etcd_root}/{cluster}/{name}.db"

    # Validation ------------------------------------------------------------------------

    @property
    def probe_dir(self) -> str:
        """Where validation writes its probe: inside Velero's tolerated metadata/ folder."""
        return self._join("metadata") + "/"

    def unknown_top_level(self, keys) -> list[str]:
        """Top-level folders under the prefix that Velero would refuse."""
        start = len(self.prefix) + 1 if self.prefix else 0
        found = set()
        for key in keys:
            rest = key[start:]
            if "/" in rest:
                found.add(rest.split("/", 1)[0])
        return sorted(found - set(VELERO_TOP_LEVEL))
