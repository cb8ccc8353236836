"""The backup engine against cluster A: each filter, checked item by item.

Every test backs up a fresh namespace holding a known mix (config maps, a
secret, a service account bound by a cluster role binding, a claim bound to a
volume, a custom resource, an object labelled to be left out), opens the
archive, and compares it with what the API server holds for the chosen scope.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from pathlib import Path

import pytest

from backups.engine.backup.run import run_backup
from backups.engine.kube.api import ApiError, Kube
from backups.engine.kube.discovery import discover
from backups.engine.storage.layout import Layout
from backups.engine.velero.reader import iter_files
from backups.engine_inputs import backup_request
from backups.models import Status
from devenv.demo_objects import STORAGE_CLASS
from devenv.seed import create
from locations.providers import get_provider
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration

CRB = "clusterrolebindings.rbac.authorization.k8s.io"
CR = "clusterroles.rbac.authorization.k8s.io"
CRD = "customresourcedefinitions.apiextensions.k8s.io"
WIDGETS = "widgets.demo.palette.io"


def kubeconfig_a(devenv) -> str:
    path = Path(devenv["CLUSTER_A_KUBECONFIG"])
    return flatten_kubeconfig(path.read_text(), path.parent)


@pytest.fixture
def kube(devenv):
    client = Kube(kubeconfig_a(devenv))
    yield client
    client.close()


@pytest.fixture
def mix(kube_a, fresh_namespace):
    """The known objects in a fresh namespace, and the cluster-scoped ones tied to it."""
    ns = fresh_namespace
    meta = lambda name, **labels: {"name": name, "namespace": ns, "labels": labels}  # noqa: E731
    objects = [
        # Made here rather than waited for, so that the namespace holds still while the
        # test compares it with the archive (the controller finds it there).
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default")},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("front", tier="frontend"),
         "data": {"k": "caf\u00e9"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("back", tier="backend")},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": meta("skipped", **{"velero.io/exclude-from-backup": "true"})},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("creds", tier="backend"),
         "data": {"password": "c2VjcmV0"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("robot", tier="backend")},
        {"apiVersion": "v1", "kind": "PersistentVolume",
         "metadata": {"name": f"{ns}-pv", "labels": {"tier": "storage"}},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STORAGE_CLASS,
                  "hostPath": {"path": f"/tmp/{ns}"},
                  "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                               "namespace": ns, "name": "data"}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data"),
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
                  "volumeName": f"{ns}-pv", "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"{ns}-role"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"{ns}-binding"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"{ns}-role"},
         "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": ns}]},
        {"apiVersion": "demo.palette.io/v1", "kind": "Widget", "metadata": meta("gizmo", tier="frontend"),
         "spec": {"size": "small", "color": "red", "replicas": 1}},
    ]  # fmt: skip
    for obj in objects:
        create(kube_a, obj)
    yield ns
    for path in (f"/api/v1/persistentvolumes/{ns}-pv",
                 f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{ns}-binding",
                 f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{ns}-role"):  # fmt: skip
        with contextlib.suppress(Exception):
            kube_a.call_api(
                *kube_a.param_serialize("DELETE", path, auth_settings=["BearerToken"])[:3]
            ).read()


@pytest.fixture
def world(db, devenv, tmp_path):
    ws = factories.workspace()
    cluster = Cluster.objects.create(
        workspace=ws, name="cluster-a", kubeconfig=kubeconfig_a(devenv)
    )
    location = factories.location(ws, path=str(tmp_path / "store"), prefix="velero")
    (tmp_path / "store").mkdir()
    return cluster, location


class Recorder:
    def __init__(self):
        self.progress: list[tuple[int, int, str]] = []
        self.lines: list[str] = []

    def on_progress(self, done, total, phase):
        self.progress.append((done, total, phase))

    def on_log(self, line):
        self.lines.append(line)

    def should_stop(self) -> bool:
        return False


def backup_with(cluster, location, provider=None, recorder=None, **options):
    backup = factories.backup(cluster, location, status=Status.RUNNING, **options)
    provider = provider or get_provider(location)
    recorder = recorder or Recorder()
    outcome = run_backup(
        backup_request(backup, provider),
        progress=recorder.on_progress,
        log=recorder.on_log,
        should_stop=recorder.should_stop,
    )
    return backup, provider, outcome, recorder


def read_archive(provider, layout: Layout, name: str) -> dict[tuple[str, str, str], dict]:
    """(group-resource, namespace, name) -> object, checking the layout on the way."""
    with provider.open_read(layout.backup_file(name, "archive")) as stream:
        entries = list(iter_files(io.BytesIO(stream.read())))
    assert entries[0] == ("metadata/version", b"1.1.0\n")
    files = dict(entries[1:])
    items, twins = {}, {}
    for path, data in files.items():
        parts = path.split("/")
        assert parts[0] == "resources", path
        if parts[2].endswith("-preferredversion"):
            twins[(parts[1], *parts[3:])] = data
            continue
        rest = parts[2:]
        key = (
            (parts[1], rest[1], rest[2][:-5])
            if rest[0] == "namespaces"
            else (parts[1], "", rest[1][:-5])
        )
        assert rest[0] in ("namespaces", "cluster") and path.endswith(".json")
        items[key] = json.loads(data)
        # Every item is also under <version>-preferredversion/, byte for byte.
        assert (
            twins.get((parts[1], *rest))
            or files[
                "/".join(
                    [
                        "resources",
                        parts[1],
                        f"{items[key]['apiVersion'].split('/')[-1]}-preferredversion",
                        *rest,
                    ]
                )
            ]
            == data
        )
    assert len(twins) == len(items)
    return items


def server_view(kube, ns: str, selector: str = "") -> dict[tuple[str, str, str], dict]:
    """What the API server holds in ``ns``, for every namespaced type, as the archive keys it."""
    found = {}
    for rt in discover(kube).types:
        if not rt.namespaced:
            continue
        query = {"labelSelector": selector} if selector else None
        try:
            doc = kube.get_json(rt.list_path(ns), query)
        except ApiError:
            continue
        for item in doc["items"]:
            labels = item["metadata"].get("labels") or {}
            if labels.get("velero.io/exclude-from-backup") == "true":
                continue
            found[(rt.group_resource, ns, item["metadata"]["name"])] = item
    return found


def in_namespace(items: dict, ns: str) -> dict:
    return {k: v for k, v in items.items() if k[1] == ns}


def cluster_items(items: dict) -> set[tuple[str, str]]:
    return {(gr, name) for gr, ns, name in items if not ns}


def assert_same_objects(archived: dict, server: dict):
    assert set(archived) == set(server)
    for key, obj in archived.items():
        live = server[key]
        assert obj["metadata"]["uid"] == live["metadata"]["uid"], key
        assert obj["apiVersion"] and obj["kind"], key
        if key[0] in ("configmaps", "secrets"):
            assert {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} == {
                k: v for k, v in live.items() if k not in ("apiVersion", "kind")
            }


def read_gz_json(provider, layout, name, kind):
    with provider.open_read(layout.backup_file(name, kind)) as stream:
        return json.loads(gzip.decompress(stream.read()))


def check_files(provider, layout, backup, outcome, items):
    """The files beside the archive agree with it and with the outcome."""
    name = backup.name
    doc = json.loads(provider.get_bytes(layout.backup_file(name, "metadata")))
    assert doc["metadata"]["name"] == name and doc["status"]["phase"] == outcome.phase
    assert doc["status"]["progress"]["itemsBackedUp"] == outcome.items == len(items)
    listed = read_gz_json(provider, layout, name, "resource-list")
    assert sum(len(v) for v in listed.values()) == len(items)
    for kind in ("volumesnapshots", "podvolumebackups", "itemoperations"):
        assert read_gz_json(provider, layout, name, kind) == []
    # Velero's restore goes by a record per PV: without disks, each is skipped with a reason
    infos = read_gz_json(provider, layout, name, "volumeinfo")
    pvs = sorted(n for gr, _ns, n in items if gr == "persistentvolumes")
    assert sorted(i["pvName"] for i in infos) == pvs
    for info in infos:
        assert info["skipped"] is True and "backupMethod" not in info and info["skippedReason"]
    results = read_gz_json(provider, layout, name, "results")
    assert set(results) == {"errors", "warnings"}
    with provider.open_read(layout.backup_file(name, "archive")) as stream:
        blob = stream.read()
    import hashlib

    assert outcome.size_bytes == len(blob) and outcome.sha256 == hashlib.sha256(blob).hexdigest()
    logs = gzip.decompress(provider.get_bytes(layout.backup_file(name, "logs"))).decode()
    assert f"Backup {outcome.phase}" in logs
    return doc, results


# --- the filters ---------------------------------------------------------------------------


def test_one_namespace_auto_takes_what_it_needs_from_the_cluster(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, rec = backup_with(cluster, location, include_namespaces=[mix])
    assert outcome.phase == "Completed", outcome.error
    layout = Layout(location.prefix)
    items = read_archive(provider, layout, backup.name)
    assert_same_objects(in_namespace(items, mix), server_view(kube, mix))
    assert ("configmaps", mix, "skipped") not in items
    assert ("configmaps", mix, "front") in items and ("pods", mix, "anything") not in items
    # auto + a namespace filter: the namespace, its bound volume, the CRD of its custom
    # resource, the binding of its service account and that binding's role; nothing else.
    assert cluster_items(items) == {
        ("namespaces", mix), ("persistentvolumes", f"{mix}-pv"), (CRD, WIDGETS),
        (CRB, f"{mix}-binding"), (CR, f"{mix}-role"),
    }  # fmt: skip
    assert items[("configmaps", mix, "front")]["data"]["k"] == "caf\u00e9"
    doc, results = check_files(provider, layout, backup, outcome, items)
    assert doc["spec"]["includedNamespaces"] == [mix]
    assert results["errors"] == {"velero": [], "cluster": [], "namespaces": {}}
    assert outcome.kubernetes_version.startswith("v1.")
    assert rec.progress[-1][0] == rec.progress[-1][1] == outcome.items
    assert any("Backup Completed" in line for line in rec.lines)


def test_never_and_excluded_resources(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, _ = backup_with(
        cluster, location, include_namespaces=[mix], cluster_resources="never",
        exclude_resources=["secrets"],
    )  # fmt: skip
    assert outcome.phase == "Completed", outcome.error
    items = read_archive(provider, Layout(location.prefix), backup.name)
    expected = {k: v for k, v in server_view(kube, mix).items() if k[0] != "secrets"}
    assert_same_objects(in_namespace(items, mix), expected)
    # never: no cluster-scoped object at all, but the namespace itself (restore needs it).
    assert cluster_items(items) == {("namespaces", mix)}


def test_always_takes_every_cluster_scoped_object(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, _ = backup_with(
        cluster, location, include_namespaces=[mix], cluster_resources="always"
    )
    assert outcome.phase == "Completed", outcome.error
    items = read_archive(provider, Layout(location.prefix), backup.name)
    assert_same_objects(in_namespace(items, mix), server_view(kube, mix))
    got = cluster_items(items)
    for gr, path in (("storageclasses.storage.k8s.io", "/apis/storage.k8s.io/v1/storageclasses"),
                     ("priorityclasses.scheduling.k8s.io", "/apis/scheduling.k8s.io/v1/priorityclasses")):  # fmt: skip
        server = {i["metadata"]["name"] for i in kube.get_json(path)["items"]}
        assert {n for g, n in got if g == gr} == server and server
    assert (CR, "cluster-admin") in got and ("nodes", "x") not in got
    # Other namespaces' objects are not there; only the chosen namespace object is.
    assert {ns for _, ns, _ in items if ns} == {mix}
    assert {n for g, n in got if g == "namespaces"} == {mix}


def test_label_selector(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, _ = backup_with(
        cluster, location, include_namespaces=[mix], label_selector="tier=backend"
    )
    assert outcome.phase == "Completed", outcome.error
    items = read_archive(provider, Layout(location.prefix), backup.name)
    expected = server_view(kube, mix, "tier=backend")
    assert {k[2] for k in expected} == {"back", "creds", "robot"}
    assert_same_objects(in_namespace(items, mix), expected)
    # The chosen namespace is written (the namespace filter names it); the unlabelled
    # claim is not backed up, so neither is its volume; the service account brings
    # its binding and role along.
    assert cluster_items(items) == {
        ("namespaces", mix),
        (CRB, f"{mix}-binding"),
        (CR, f"{mix}-role"),
    }


def test_included_resources(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, _ = backup_with(
        cluster, location, include_namespaces=[mix], include_resources=["configmaps", "wd"]
    )
    assert outcome.phase == "Completed", outcome.error
    items = read_archive(provider, Layout(location.prefix), backup.name)
    expected = {k: v for k, v in server_view(kube, mix).items() if k[0] in ("configmaps", WIDGETS)}
    assert_same_objects(in_namespace(items, mix), expected)
    # Namespaces are a resource like another for the include list (as in Velero);
    # the widget's CRD comes along as a related object.
    assert cluster_items(items) == {(CRD, WIDGETS)}


def test_excluded_namespace_and_everything_else(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, _ = backup_with(
        cluster, location, exclude_namespaces=[mix, "bulk-*"], include_resources=["configmaps", "pvc", "namespaces"]
    )  # fmt: skip
    assert outcome.phase == "Completed", outcome.error
    items = read_archive(provider, Layout(location.prefix), backup.name)
    namespaces = {ns for _, ns, _ in items if ns}
    assert mix not in namespaces and not any(ns.startswith("bulk-") for ns in namespaces)
    assert {"shop", "billing", "monitoring"} <= namespaces
    shop = {k for k in items if k[1] == "shop"}
    assert shop == set(server_view(kube, "shop")) & {k for k in shop}
    assert ("configmaps", "shop", "cart-config") in items
    # An exclude is a namespace filter too: auto takes only related cluster objects.
    got = cluster_items(items)
    assert ("persistentvolumes", "shop-data") in got and (
        "persistentvolumes",
        f"{mix}-pv",
    ) not in got
    assert not any(gr == "storageclasses.storage.k8s.io" for gr, _ in got)
    assert ("namespaces", "shop") in got and ("namespaces", mix) not in got


def test_whole_cluster(world, mix, kube):
    cluster, location = world
    backup, provider, outcome, _ = backup_with(cluster, location)
    assert outcome.phase == "Completed", outcome.error
    items = read_archive(provider, Layout(location.prefix), backup.name)
    assert_same_objects(in_namespace(items, mix), server_view(kube, mix))
    got = cluster_items(items)
    assert ("storageclasses.storage.k8s.io", STORAGE_CLASS) in got and (CR, "cluster-admin") in got
    assert ("namespaces", "kube-system") in got and ("namespaces", mix) in got
    assert not any(gr in ("events", "events.events.k8s.io") for gr, _, _ in items)


# --- every store ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["minio", "s3-moto", "gcs", "azure-key"])
def test_backup_to_each_store(kind, world, mix, kube, devenv, request):
    from tests.integration.provider_support import STORES
    from tests.integration.provider_support import location as store_location

    cluster, _ = world
    bucket = request.getfixturevalue(STORES[kind])
    location = store_location(kind, devenv, bucket, prefix="velero")
    location.name = f"engine-{kind}"
    location.workspace = cluster.workspace
    location.save()
    backup, provider, outcome, _ = backup_with(cluster, location, include_namespaces=[mix])
    assert outcome.phase == "Completed", outcome.error
    layout = Layout("velero")
    items = read_archive(provider, layout, backup.name)
    assert_same_objects(in_namespace(items, mix), server_view(kube, mix))
    check_files(provider, layout, backup, outcome, items)
    keys = {info.key for info in provider.list(layout.backup_dir(backup.name))}
    assert keys == {layout.backup_file(backup.name, k) for k in (
        "metadata", "archive", "logs", "results", "resource-list", "volumesnapshots",
        "podvolumebackups", "itemoperations", "volumeinfo", "archive-index")}  # fmt: skip
    provider.close()
