"""A large restore keeps the archive's objects out of memory: their bytes wait in a
temporary file (``ItemStore``) and the plan points at them; every result is recorded once,
in batches; the file is gone when the restore ends."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from dataclasses import replace

from backups.engine.inputs import ClusterConnection, RestoreRequest, RestoreSpec, Store
from backups.engine.restore import archive as restore_archive
from backups.engine.restore import run as restore_run
from backups.engine.restore.archive import ItemStore, read_contents
from backups.engine.restore.options import build_options
from backups.engine.restore.plan import plan_restore
from backups.engine.velero.archive import ArchiveWriter, item_path, tar_entry
from locations.providers.filesystem import FilesystemProvider
from tests.unit.test_restore_plan import TYPES


def cm(name: str, ns: str) -> bytes:
    meta = {"name": name, "namespace": ns, "labels": {"n": name}}
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}).encode()


def archive(count: int, namespaces: int = 3) -> bytes:
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, mtime=1)
    writer.add_version_file()
    for i in range(count):
        ns, data = f"ns-{i % namespaces}", cm(f"c{i:05d}", f"ns-{i % namespaces}")
        writer.write_records(
            tar_entry(item_path("configmaps", ns, f"c{i:05d}"), data, 1)
            + tar_entry(item_path("configmaps", ns, f"c{i:05d}", "v1"), data, 1)
        )
    writer.finish()
    return sink.getvalue()


def test_the_item_store_keeps_bytes_in_its_file_and_positions_in_memory():
    store = ItemStore()
    store[("configmaps", "a", "x")] = b'{"x":1}'
    store[("configmaps", "a", "y")] = b""
    store[("configmaps", "a", "x")] = b'{"x":2}'  # replaced: the new bytes are read
    assert store[("configmaps", "a", "x")] == b'{"x":2}'
    assert store[("configmaps", "a", "y")] == b""
    assert set(store) == {("configmaps", "a", "x"), ("configmaps", "a", "y")} and len(store) == 2
    assert all(isinstance(v, int) for v in store._where.values())
    assert store.read(store.position(("configmaps", "a", "x"))) == b'{"x":2}'
    del store[("configmaps", "a", "y")]
    assert ("configmaps", "a", "y") not in store and store.get(("configmaps", "a", "y")) is None
    handle = store._file
    store.close()
    assert handle.closed and len(store) == 0


def test_an_archive_read_for_a_restore_holds_its_objects_on_disk():
    contents = read_contents(io.BytesIO(archive(300)))
    try:
        items = contents.items
        assert isinstance(items, ItemStore) and len(items) == 300
        assert json.loads(items[("configmaps", "ns-1", "c00004")])["metadata"]["name"] == "c00004"
        size = sum(len(cm(f"c{i:05d}", f"ns-{i % 3}")) for i in range(300))
        assert items._file.seek(0, io.SEEK_END) == size  # each main copy once, no twin
        # One string per group-resource and namespace, not one per item.
        keys = sorted(items)
        assert all(k[0] is keys[0][0] for k in keys)
        assert len({id(k[1]) for k in keys}) == 3
    finally:
        contents.close()


def test_the_plan_points_at_the_stored_bytes():
    contents = read_contents(io.BytesIO(archive(40)))
    request = RestoreRequest("r1", "b1", ClusterConnection("t", kubeconfig=""),
                             Store(provider=None, name="loc"),
                             replace(RestoreSpec(), namespace_mapping={"ns-1": "other"}))  # fmt: skip
    options, _ = build_options(request, TYPES, contents.group_resources())
    plan = plan_restore(contents, options)
    items = plan.group("configmaps").items
    assert len(items) == 40
    assert all(isinstance(item.source, int) and item.store is contents.items for item in items)
    moved = next(i for i in items if i.source_namespace == "ns-1")
    assert moved.namespace == "other" and moved.data == cm(moved.name, "ns-1")
    assert moved.body()["metadata"]["namespace"] == "other"
    contents.close()


class NullKube:
    """An API server that serves config maps and namespaces and creates at once."""

    server = "https://null.invalid"
    docs = {
        "/version": {"gitVersion": "v1.36.0"},
        "/api": {"versions": ["v1"]},
        "/apis": {"groups": []},
        "/api/v1": {
            "resources": [
                {"name": "configmaps", "kind": "ConfigMap", "namespaced": True,
                 "verbs": ["create", "get", "list"]},
                {"name": "namespaces", "kind": "Namespace", "namespaced": False,
                 "verbs": ["create", "get", "list"]},
            ]
        },
    }  # fmt: skip

    def __init__(self):
        self.posts: Counter = Counter()

    def get_json(self, path, query=None):
        return self.docs[path]

    def get(self, path, query=None):
        return json.dumps(self.docs[path]).encode()

    def call(self, method, path, body=None, query=None, content_type=None):
        assert method == "POST", (method, path)
        self.posts[body["metadata"]["name"]] += 1
        return 201, b"{}", "Created"

    def close(self):
        pass


def test_a_restore_of_many_objects_records_each_once_in_batches(tmp_path, monkeypatch):
    provider = FilesystemProvider(str(tmp_path))
    provider.put_bytes("velero/backups/b1/b1.tar.gz", archive(1234))
    kube = NullKube()
    monkeypatch.setattr(restore_run.Kube, "connect", classmethod(lambda cls, c, pool_size=8: kube))
    opened = []
    original = restore_archive.ItemStore.__init__

    def remember(self):
        original(self)
        opened.append(self)

    monkeypatch.setattr(restore_archive.ItemStore, "__init__", remember)
    batches: list[list] = []
    request = RestoreRequest("r1", "b1", ClusterConnection("t", kubeconfig=""),
                             Store(provider, "loc", "velero"),
                             replace(RestoreSpec(), namespace_mapping={"ns-0": "moved"}))  # fmt: skip
    outcome = restore_run.run_restore(
        request, progress=lambda *a: None, log=lambda line: None, record=batches.append
    )
    assert outcome.phase == "Completed", outcome.error
    assert outcome.created == outcome.total == 1234 + 3
    recorded = [(r.resource, r.namespace, r.name) for batch in batches for r in batch]
    assert len(recorded) == len(set(recorded)) == 1237
    assert ("configmaps", "moved", "c00000") in recorded
    assert ("namespaces", "", "moved") in recorded
    assert all(0 < len(batch) <= restore_run.RECORD_BATCH for batch in batches)
    assert set(kube.posts.values()) == {1}  # each object created once
    assert opened and all(store._file is None for store in opened)  # the item file is gone
    # Velero's resource list, made from the plan's items at the end.
    listed = json.loads(gzip.decompress(
        (tmp_path / "velero/restores/r1/restore-r1-resource-list.json.gz").read_bytes()
    ))  # fmt: skip
    assert set(listed) == {"v1/ConfigMap", "v1/Namespace"}
    assert len(listed["v1/ConfigMap"]) == 1234
    assert listed["v1/ConfigMap"] == sorted(listed["v1/ConfigMap"])
    assert "moved/c00000(created)" in listed["v1/ConfigMap"]
    assert sorted(listed["v1/Namespace"]) == ["moved(created)", "ns-1(created)", "ns-2(created)"]
