"""A granular restore reads only the archive's members that hold its chosen items
(through the index, by ranged reads: bytes counted), and the whole archive when the
backup has no index or one that is not its archive's."""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter

import pytest
from django.test import override_settings

from backups.engine.inputs import ClusterConnection, RestoreRequest, RestoreSpec, Store
from backups.engine.kube import api
from backups.engine.restore import chosen, run
from benchmarks.offline_data import NullKube
from locations.providers.filesystem import FilesystemProvider
from tests.unit.test_archive_index import LAYOUT, NAME, Counting, write_archive

CHOSEN = (("v1/ConfigMap", "ns-3", "cm-43"), ("v1/ConfigMap", "ns-3", "cm-3163"),
          ("v1/ConfigMap", "ns-21", "cm-5861"))  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """6,000 ConfigMaps of about 1 KiB (a dozen members), the archive's sha256."""
    root = tmp_path_factory.mktemp("chosen")
    with override_settings(PALETTE_FILESYSTEM_ROOTS=[tempfile.gettempdir()]):
        document = write_archive(FilesystemProvider(str(root)), 6000, filler=500)
    archive = root / "pfx/backups/big/big.tar.gz"
    return root, document, archive.stat().st_size, hashlib.sha256(archive.read_bytes()).hexdigest()


def restore(provider, sha256: str, chosen_items=CHOSEN) -> tuple[object, Counter, list[str]]:
    outcomes: Counter = Counter()
    lines: list[str] = []
    request = RestoreRequest(
        name="granular",
        backup_name=NAME,
        cluster=ClusterConnection("null", kubeconfig=""),
        store=Store(provider, "t", LAYOUT.prefix),
        spec=RestoreSpec(chosen_items=chosen_items, namespace_mapping={"ns-3": "r3"}),
        backup_sha256=sha256,
    )
    outcome = run.run_restore(
        request, progress=lambda *a: None, log=lines.append,
        record=lambda results: outcomes.update(
            (r.resource, r.namespace, r.name, r.outcome) for r in results
        ),
    )  # fmt: skip
    return outcome, outcomes, lines


@pytest.fixture
def null_kube(monkeypatch):
    """A stand-in API server: discovery of the mix's types, every create a 201."""
    monkeypatch.setattr(api.Kube, "connect", NullKube.connect)


def created(outcomes: Counter) -> set[tuple[str, str, str]]:
    return {(gr, ns, name) for gr, ns, name, outcome in outcomes if outcome == "created"}


def test_three_chosen_items_read_only_their_members(store, null_kube):
    root, document, size, sha = store
    assert len(document["members"]) >= 8
    provider = Counting(FilesystemProvider(str(root)))
    outcome, outcomes, lines = restore(provider, sha)
    assert outcome.phase == "Completed", (outcome.error, lines)
    assert created(outcomes) == {
        ("configmaps", "r3", "cm-43"), ("configmaps", "r3", "cm-3163"),
        ("configmaps", "ns-21", "cm-5861"), ("namespaces", "", "r3"),
        ("namespaces", "", "ns-21"),
    }  # fmt: skip
    index_size = (root / "pfx/backups/big/big-palette-index.json.gz").stat().st_size
    ranged = [r for r in provider.ranges if r[0] == "big.tar.gz"]
    # The first member (metadata/version) and at most one member per chosen item.
    assert 2 <= len(ranged) <= 4
    assert provider.read == index_size + sum(r[2] for r in ranged)
    assert provider.read < size / 2
    assert any("Archive read through its index: " in line for line in lines), lines


def test_without_an_index_or_with_another_archives_the_archive_is_read_whole(
    store, null_kube, tmp_path
):
    root, _document, size, sha = store
    # An index that records another archive's checksum is not used.
    provider = Counting(FilesystemProvider(str(root)))
    outcome, outcomes, lines = restore(provider, "0" * 64)
    assert outcome.phase == "Failed" and "checksum does not match" in outcome.error
    assert not [r for r in provider.ranges if r[0] == "big.tar.gz"]
    # No index: the whole archive, its checksum checked, and the same restore.
    with override_settings(PALETTE_FILESYSTEM_ROOTS=[tempfile.gettempdir()]):
        write_archive(FilesystemProvider(str(tmp_path)), 600, with_index=False)
    plain = tmp_path / "pfx/backups/big/big.tar.gz"
    provider = Counting(FilesystemProvider(str(tmp_path)))
    outcome, outcomes, lines = restore(
        provider, hashlib.sha256(plain.read_bytes()).hexdigest(), CHOSEN[:1]
    )
    assert outcome.phase == "Completed", (outcome.error, lines)
    assert ("configmaps", "r3", "cm-43") in created(outcomes)
    assert not provider.ranges and provider.read == plain.stat().st_size


def test_a_chosen_item_the_index_does_not_list_means_the_whole_archive(store):
    root, _document, _size, sha = store
    provider = Counting(FilesystemProvider(str(root)))
    spec = RestoreSpec(chosen_items=(("v1/ConfigMap", "ns-3", "nowhere"),))
    assert chosen.read_chosen(provider, LAYOUT, NAME, spec, sha) is None
    assert not [r for r in provider.ranges if r[0] == "big.tar.gz"]


def test_a_member_that_does_not_match_its_index_means_the_whole_archive(store, tmp_path):
    root, document, _size, sha = store
    provider = FilesystemProvider(str(tmp_path))
    for suffix in ("archive", "archive-index"):
        key = LAYOUT.backup_file(NAME, suffix)
        provider.put_bytes(key, FilesystemProvider(str(root)).get_bytes(key))
    bad = {**document, "members": [list(m) for m in document["members"]]}
    bad["members"][1][1] -= 7  # member 1 cut short
    from backups.engine.velero import index

    provider.put_bytes(LAYOUT.backup_file(NAME, "archive-index"), index.encode(bad))
    offsets = document["items"]["v1/ConfigMap"]
    in_member_1 = next(k for k, v in offsets.items() if bad["members"][1][2] <= v)
    ns, name = in_member_1.split("/")
    spec = RestoreSpec(chosen_items=(("v1/ConfigMap", ns, name),))
    assert chosen.read_chosen(provider, LAYOUT, NAME, spec, sha) is None
