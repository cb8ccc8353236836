"""A granular restore's archive: only the gzip members that hold what it needs.

A restore of chosen items (``RestoreSpec.chosen_items``) needs those items, the
Namespace objects of their namespaces, the CustomResourceDefinitions of their types
and, when volumes are restored, the PersistentVolumes their claims are bound to.
Through the archive's index (``velero/index.py``) the restore reads only the members
that hold these (and the first, with ``metadata/version``): each by one ranged read,
unpacked on its own to check it (its gzip CRC, its length) before it is used. The
members read are put one after another into a spooled file, with an end-of-archive
member after them, which ``read_contents`` reads as it reads a whole archive; a
member taken wholly may hold other items beside the needed ones, which the plan
leaves out as it leaves out the rest of a whole archive.

``read_chosen`` answers None (and the caller downloads the archive whole, as before)
when the backup has no index (Velero's backups, older ones), when its index does not
record the archive checksum the console recorded for the backup, when a chosen item is
not in it, or when a member does not match it.

What this gives up: the whole archive's sha256 is not computed (it is not read), so a
change in the store to members the restore does not read goes unseen, as it does not
matter to it; the members it does read are checked by their gzip CRC (on a sealed
location, by the authenticated encryption of each chunk as well).
"""

from __future__ import annotations

import gzip
import json
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from backups.engine.restore.archive import IN_MEMORY, Contents, read_contents
from backups.engine.storage.base import Provider, StorageError
from backups.engine.storage.layout import Layout
from backups.engine.velero import index as archive_index
from backups.engine.velero.reader import BLOCK, ArchiveError

CRDS = "customresourcedefinitions.apiextensions.k8s.io"
END_OF_ARCHIVE = gzip.compress(bytes(2 * BLOCK), mtime=0)


@dataclass
class ChosenRead:
    """What ``read_chosen`` read: the contents, and the file they came from (the
    caller closes both)."""

    contents: Contents
    spooled: BinaryIO
    members: int  # members read
    of_members: int
    read_bytes: int
    archive_bytes: int

    def describe(self) -> str:
        return (
            f"Archive read through its index: {self.members} of {self.of_members} members, "
            f"{self.read_bytes} of {self.archive_bytes} bytes (the index records the "
            "backup's sha256; each member's gzip CRC checked)."
        )


def _types_of(index: archive_index.ArchiveIndex, group_resource: str) -> list[str]:
    return [t for t, gr in index.types.items() if gr == group_resource]


def _wanted(index, chosen, contents: Contents | None, restore_pvs: bool) -> list[tuple[str, str]]:
    """(type, key) of the items that may be needed besides the chosen ones: Namespaces,
    CRDs and, once the claims are read (``contents``), their volumes."""
    namespaces = {ns for _t, ns, _n in chosen if ns}
    wanted = [(t, ns) for t in _types_of(index, "namespaces") for ns in sorted(namespaces)]
    resources = {index.types.get(t) for t, _ns, _n in chosen} - {None}
    wanted += [(t, gr) for t in _types_of(index, CRDS) for gr in sorted(resources)]
    if contents is not None and restore_pvs:
        volumes = set()
        for key in contents.items:
            if key[0] == "persistentvolumeclaims":
                spec = json.loads(contents.items[key]).get("spec") or {}
                if isinstance(spec, dict) and isinstance(spec.get("volumeName"), str):
                    volumes.add(spec["volumeName"])
        pvs = _types_of(index, "persistentvolumes")
        wanted += [(t, name) for t in pvs for name in sorted(volumes)]
    return wanted


def _spool(provider: Provider, key: str, index, numbers: set[int]) -> tuple[BinaryIO, int]:
    """The members ``numbers``, in order, checked, then the end of the archive, in a
    rewound spooled file; and the bytes read. IndexMismatch, StorageError."""
    spooled = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, prefix="palette-restore-")  # noqa: SIM115
    read = 0
    try:
        for number in sorted(numbers):
            member = index.members[number]
            archive_index.unpack_member(provider, key, member, spooled)
            read += member[1]
        spooled.write(END_OF_ARCHIVE)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled, read


def read_chosen(
    provider: Provider, layout: Layout, name: str, spec, expected_sha256: str, keep=None
) -> ChosenRead | None:
    """The contents a restore of ``spec.chosen_items`` needs, read member by member, or
    None when the archive is to be read whole (see the module's docstring). Raises
    ArchiveError (a member damaged, or the store failed)."""
    try:
        return _read_chosen(provider, layout, name, spec, expected_sha256, keep)
    except StorageError as exc:
        raise ArchiveError(f"Reading the archive's members failed: {exc}") from None


def _read_chosen(provider, layout, name, spec, expected_sha256, keep) -> ChosenRead | None:
    chosen = [tuple(item) for item in spec.chosen_items or ()]
    if not chosen or not expected_sha256:
        return None
    index = archive_index.read_index(provider, layout, name)
    if archive_index.matches(index, expected_sha256) is None or not index.members:
        return None
    numbers = {0}
    for type_name, ns, item in chosen:
        number = index.member_number(type_name, f"{ns}/{item}" if ns else item)
        if number is None:
            return None  # not indexed: only the whole archive can say
        numbers.add(number)
    key = layout.backup_file(name, "archive")
    contents, spooled = None, None
    try:
        for _round in range(2):  # the second: the claims' volumes
            wanted = _wanted(index, chosen, contents, bool(spec.restore_pvs))
            more = {index.member_number(t, k) for t, k in wanted} - {None}
            if contents is not None and more <= numbers:
                break
            numbers |= more
            if contents is not None:
                contents.close()
                spooled.close()
                contents, spooled = None, None
            spooled, read = _spool(provider, key, index, numbers)
            contents = read_contents(spooled, keep)
    except BaseException as exc:
        for opened in (contents, spooled):
            if opened is not None:
                opened.close()
        if isinstance(exc, archive_index.IndexMismatch):
            return None
        raise
    size = int(index.archive.get("size") or 0)
    return ChosenRead(contents, spooled, len(numbers), len(index.members), read, size)
