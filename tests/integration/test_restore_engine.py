"""The restore engine against the real clusters: round trip A -> B, deleted namespaces,
existing-object policies, previews that change nothing, and damaged archives.

Backups are made with the backup engine into a local directory; restores go into
namespaces each test names uniquely (mapped on B, or fresh on A) and deletes
afterwards. The seeded objects of both clusters are only read.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from backups.engine.backup.run import run_backup
from backups.engine.kube.api import ApiError, Kube
from backups.engine.kube.discovery import discover
from backups.engine.restore import bindings
from backups.engine.restore.archive import parse_path
from backups.engine.restore.run import run_restore
from backups.engine.restore.sanitize import SanitizeOptions, differences, sanitize
from backups.engine.restore.target import Target
from backups.engine.storage.layout import Layout
from backups.engine.velero.reader import iter_files
from backups.engine_inputs import backup_request, restore_request
from backups.models import RestoreItem, Status
from devenv.demo_objects import APPS
from devenv.seed import create
from devenv.testing import unique
from locations.providers import get_provider
from tests import factories
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster

pytestmark = pytest.mark.integration

CRD = "customresourcedefinitions.apiextensions.k8s.io"
CRB = "clusterrolebindings.rbac.authorization.k8s.io"
CR = "clusterroles.rbac.authorization.k8s.io"
DEMO = sorted(APPS)  # shop, billing, monitoring


def kubeconfig(devenv, which: str) -> str:
    path = Path(devenv[f"CLUSTER_{which}_KUBECONFIG"])
    return flatten_kubeconfig(path.read_text(), path.parent)


class Recorder:
    """The callbacks, saving each batch of results as RestoreItem rows as the task does."""

    def __init__(self, restore):
        self.restore = restore
        self.progress, self.lines, self.items = [], [], []

    def on_progress(self, done, total, phase):
        self.progress.append((done, total, phase))

    def on_log(self, line):
        self.lines.append(line)

    def on_record(self, batch):
        self.items += batch
        RestoreItem.objects.bulk_create(
            RestoreItem(restore=self.restore, **asdict(item)) for item in batch
        )

    def outcomes(self) -> dict[tuple[str, str, str], str]:
        return {(i.resource, i.namespace, i.name): i.outcome for i in self.items}

    def item(self, resource, namespace, name):
        return next(
            i
            for i in self.items
            if (i.resource, i.namespace, i.name) == (resource, namespace, name)
        )


@dataclass
class World:
    ws: object
    a: Cluster
    b: Cluster
    location: object
    provider: object
    layout: Layout
    kube_a: Kube
    kube_b: Kube
    made: list[tuple[Kube, str]]  # (cluster, path) to delete afterwards


@pytest.fixture
def world(db, devenv, tmp_path):
    ws = factories.workspace()
    a = Cluster.objects.create(workspace=ws, name="cluster-a", kubeconfig=kubeconfig(devenv, "A"))
    b = Cluster.objects.create(workspace=ws, name="cluster-b", kubeconfig=kubeconfig(devenv, "B"))
    (tmp_path / "store").mkdir()
    location = factories.location(ws, path=str(tmp_path / "store"), prefix="velero")
    kube_a, kube_b = Kube(a.kubeconfig, 8), Kube(b.kubeconfig, 8)
    made: list[tuple[Kube, str]] = []  # (cluster, path) to delete afterwards
    yield World(ws, a, b, location, get_provider(location), Layout("velero"), kube_a, kube_b, made)
    for kube, path in reversed(made):
        with contextlib.suppress(Exception):
            remove(kube, path)
    kube_a.close()
    kube_b.close()


def remove(kube: Kube, path: str) -> None:
    """Delete ``path``. The devenv's controller manager runs no PV/PVC protection
    controller, so the finalizers the API server puts on volumes and claims would
    hold them (and their namespace) in Terminating forever: take them off first."""
    target = Target(kube, None)
    release = {"metadata": {"finalizers": None}}
    merge = "application/merge-patch+json"
    if path.startswith("/api/v1/namespaces/") and path.count("/") == 4:
        claims = target.request("GET", f"{path}/persistentvolumeclaims").doc().get("items") or []
        for claim in claims:
            name = claim["metadata"]["name"]
            target.request("PATCH", f"{path}/persistentvolumeclaims/{name}", release, None, merge)
    if path.startswith("/api/v1/persistentvolumes/"):
        target.request("PATCH", path, release, None, merge)
    target.request("DELETE", path)


def backup_of(world, **options):
    backup = factories.backup(world.a, world.location, status=Status.RUNNING, **options)
    outcome = run_backup(
        backup_request(backup, world.provider), progress=lambda *a: None, log=lambda line: None
    )
    assert outcome.phase == "Completed", outcome.error
    backup.sha256, backup.status = outcome.sha256, Status.COMPLETED
    backup.save()
    return backup


def restore_of(world, backup, target=None, **options):
    target = target or world.b
    restore = factories.restore(backup, target, status=Status.RUNNING, **options)
    recorder = Recorder(restore)
    outcome = run_restore(
        restore_request(restore, world.provider),
        progress=recorder.on_progress,
        log=recorder.on_log,
        record=recorder.on_record,
    )
    return restore, outcome, recorder


def mapped(world, sources, kube=None) -> dict[str, str]:
    """A unique target namespace for each source, deleted after the test."""
    mapping = {ns: unique(f"r-{ns[:8]}") for ns in sources}
    for target in mapping.values():
        world.made.append((kube or world.kube_b, f"/api/v1/namespaces/{target}"))
    return mapping


def archive_items(world, backup) -> dict[tuple[str, str, str], dict]:
    with world.provider.open_read(world.layout.backup_file(backup.name, "archive")) as stream:
        found = {}
        for path, data in iter_files(stream):
            parsed = parse_path(path)
            if parsed and not parsed[1]:
                found[parsed[0]] = json.loads(data)
        return found


def live(kube: Kube, gr: str, namespace: str, name: str) -> dict | None:
    rt = discover_cache(kube).find(gr)
    if rt is None:  # a type a restore of the test has just brought: discover again
        _discoveries.pop(kube.server, None)
        rt = discover_cache(kube).find(gr)
    assert rt is not None, f"{kube.server} serves no {gr}"
    try:
        return kube.get_json(f"{rt.list_path(namespace or None)}/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


_discoveries: dict[str, object] = {}  # by API server (an id() is reused once freed)


def discover_cache(kube: Kube):
    if kube.server not in _discoveries:
        _discoveries[kube.server] = discover(kube)
    return _discoveries[kube.server]


def state(kube: Kube, namespaces) -> dict[tuple[str, str, str], str]:
    """resourceVersion of every object in ``namespaces`` (and of the namespaces)."""
    found = {}
    for ns in namespaces:
        doc = live(kube, "namespaces", "", ns)
        if doc is not None:
            found[("namespaces", "", ns)] = doc["metadata"]["resourceVersion"]
        for rt in discover(kube).types:
            if not rt.namespaced or "list" not in rt.verbs:
                continue
            with contextlib.suppress(ApiError):
                for obj in kube.get_json(rt.list_path(ns))["items"]:
                    key = (rt.group_resource, ns, obj["metadata"]["name"])
                    found[key] = obj["metadata"]["resourceVersion"]
    return found


def wait_gone(kube: Kube, path: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kube.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"{path} still exists after {timeout} s")


def controlled(obj: dict) -> bool:
    """Whether a controller (a ReplicaSet, a Job...) owned the object on its source cluster."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("controller") for ref in refs)


# --- 1. round trip --------------------------------------------------------------------------


def test_the_seeded_mix_of_a_comes_back_on_b_under_mapped_namespaces(world):
    backup = backup_of(world, include_namespaces=DEMO)
    archived = archive_items(world, backup)
    mapping = mapped(world, DEMO)
    restore, outcome, rec = restore_of(
        world, backup, namespace_mapping=mapping, include_namespaces=DEMO,
        cluster_resources="always", restore_pvs=True,
    )  # fmt: skip
    assert outcome.phase == "Completed", (outcome.error, rec.lines)
    outcomes = rec.outcomes()
    assert outcome.total == len(outcomes) == RestoreItem.objects.filter(restore=restore).count()
    assert outcome.created + outcome.skipped + outcome.updated == outcome.total

    # Every restorable archived object is in the results and on B, equal to its source
    # after the same stripping; what controllers of B make for themselves is left out.
    options = SanitizeOptions(backup.name, restore.name, mapping)
    # Existing ClusterRoleBindings whose subjects the mapping moves get a copy on B.
    copies = {
        (CRB, "", name): bindings.copy_name(name, bindings.mapped_subjects(obj, mapping))
        for (gr, _ns, name), obj in archived.items()
        if gr == CRB
        and bindings.mapped_subjects(obj, mapping)
        and live(world.kube_b, CRB, "", name)
    }
    for name in copies.values():
        world.made.append(
            (world.kube_b, f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
        )
    for (gr, ns, name), obj in archived.items():
        if gr in ("endpoints", "endpointslices.discovery.k8s.io") or name == "kube-root-ca.crt":
            continue
        target_ns = mapping.get(ns, ns)
        target_name = mapping.get(name, name) if gr == "namespaces" else name
        key = (gr, target_ns, target_name)
        assert key in outcomes, key
        desired = sanitize(gr, json.loads(json.dumps(obj)), options)
        on_b = live(world.kube_b, gr, target_ns, target_name)
        if on_b is None and gr == "pods" and controlled(obj):
            # B's ReplicaSet adopts the restored pod and may replace it at once (pending pods
            # of a fresh cluster, or more pods than replicas): the restore created it, which
            # is what the outcome above says.
            assert outcomes[key] == "created", key
            continue
        assert on_b is not None, key
        if gr == CRB and key in copies:  # B's original is left alone; its copy holds them
            on_b = live(world.kube_b, gr, "", copies[key])
            desired = bindings.copy_of(desired, bindings.mapped_subjects(obj, mapping))
        if outcomes[key] in ("created", "skipped_equal"):
            assert differences(gr, desired, on_b) == [], key

    # The cluster-scoped objects B already holds from its own seeding.
    assert outcomes[(CRD, "", "widgets.demo.palette.io")] == "skipped_equal"
    assert outcomes[(CR, "", "palette-demo-reader")] == "skipped_equal"
    # Its subject's namespace is mapped: B's binding is left as it is, and a copy named for
    # the target namespace grants the mapped account.
    binding = rec.item(CRB, "", "palette-demo-reader")
    copy = f"palette-demo-reader-{mapping['monitoring']}"
    assert binding.outcome == "created" and f"its copy {copy} was created" in binding.message
    assert live(world.kube_b, CRB, "", "palette-demo-reader")["subjects"][0]["namespace"] == (
        "monitoring"
    )
    for ns in DEMO:
        volume = rec.item("persistentvolumes", "", f"{ns}-data")  # bound to B's own claim
        assert volume.outcome == "skipped_exists" and "spec.claimRef.namespace" in volume.message
    assert outcome.warnings == len(DEMO)
    namespaced = Counter(o for (gr, ns, _n), o in outcomes.items() if ns)
    assert set(namespaced) <= {"created", "skipped_equal"} and namespaced["created"] > 50
    assert {outcomes[("widgets.demo.palette.io", mapping[ns], f"{app}-widget")]
            for ns in DEMO for app, _t, _p in APPS[ns]} == {"created"}  # fmt: skip

    # Progress moved, and the log says what happened group by group.
    assert rec.progress[-1][0] == outcome.total and rec.progress[-1][2] == "Completed"
    log = "\n".join(rec.lines)
    assert "deployments.apps: restoring 7 items." in log and "Restore Completed" in log
    assert "deployments.apps: 7 items (7 created) in " in log

    # The artefacts are in the location, in Velero's layout.
    def artefact(kind):
        key = world.layout.restore_file(restore.name, kind)
        return gzip.decompress(world.provider.get_bytes(key))

    results = json.loads(artefact("results"))
    assert results["errors"] == {"velero": [], "cluster": [], "namespaces": {}}
    assert not any("palette-demo-reader" in w for w in results["warnings"]["cluster"])
    listing = json.loads(artefact("resource-list"))
    assert f"{mapping['shop']}/frontend(created)" in listing["apps/v1/Deployment"]
    assert (
        "widgets.demo.palette.io(skipped)"
        in listing["apiextensions.k8s.io/v1/CustomResourceDefinition"]
    )
    assert b"Restore Completed" in artefact("logs")


# --- 2. a deleted namespace, and the two existing-object policies --------------------------


def fill(kube_api, ns: str) -> None:
    meta = lambda name, **labels: {"name": name, "namespace": ns, "labels": labels}  # noqa: E731
    for obj in [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings", tier="web"),
         "data": {"mode": "on", "level": "3"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta("creds"),
         "data": {"password": "c2VjcmV0"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("robot")},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("web", tier="web"),
         "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web", tier="web"),
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}},
        {"apiVersion": "demo.palette.io/v1", "kind": "Widget", "metadata": meta("gizmo"),
         "spec": {"size": "small", "color": "red", "replicas": 1}},
    ]:  # fmt: skip
        create(kube_api, obj)


def test_a_deleted_namespace_comes_back_and_existing_objects_follow_the_policy(
    world, kube_a, fresh_namespace
):
    ns = fresh_namespace
    fill(kube_a, ns)
    # An object (left out of the backup) whose finalizer holds the namespace in
    # Terminating until a "controller" (the timer below) lets it go.
    target = Target(world.kube_a, None)
    holder = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "holder", "finalizers": ["palette.io/hold"],
                           "labels": {"velero.io/exclude-from-backup": "true"}}}  # fmt: skip
    assert target.request("POST", f"/api/v1/namespaces/{ns}/configmaps", holder).ok
    backup = backup_of(world, include_namespaces=[ns])
    assert target.request("DELETE", f"/api/v1/namespaces/{ns}").ok
    release = threading.Timer(3.0, lambda: target.request(
        "PATCH", f"/api/v1/namespaces/{ns}/configmaps/holder", {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json"))  # fmt: skip
    release.start()
    try:
        restore, outcome, rec = restore_of(world, backup, target=world.a)
    finally:
        release.join()
    assert outcome.phase == "Completed", (outcome.error, rec.lines)
    outcomes = rec.outcomes()
    namespace = rec.item("namespaces", "", ns)
    assert namespace.outcome == "created" and "after the old namespace" in namespace.message
    assert any(f"Namespace {ns} is being deleted; waiting" in line for line in rec.lines)
    for key in [("configmaps", ns, "settings"), ("secrets", ns, "creds"),
                ("services", ns, "web"), ("deployments.apps", ns, "web"),
                ("widgets.demo.palette.io", ns, "gizmo")]:  # fmt: skip
        assert outcomes[key] == "created", key
        assert live(world.kube_a, *key) is not None
    service = live(world.kube_a, "services", ns, "web")
    assert service["spec"]["ports"][0]["nodePort"]  # a new one, given by the cluster

    # Someone changes the config map: policy none leaves it and says what differs.
    target = Target(world.kube_a, None)
    path = f"/api/v1/namespaces/{ns}/configmaps/settings"
    patch = {"data": {"mode": "off", "extra": "1"}}
    assert target.request("PATCH", path, patch, content_type="application/merge-patch+json").ok
    before = live(world.kube_a, "configmaps", ns, "settings")
    _r, outcome, rec = restore_of(world, backup, target=world.a)
    assert outcome.phase == "Completed" and outcome.warnings == 1
    item = rec.item("configmaps", ns, "settings")
    assert item.outcome == "skipped_exists"
    assert "data.mode" in item.message and "data.extra" in item.message
    assert Counter(rec.outcomes().values()) == {"skipped_equal": outcome.total - 1,
                                                "skipped_exists": 1}  # fmt: skip
    after = live(world.kube_a, "configmaps", ns, "settings")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # Policy update patches it back to the backup's content.
    _r, outcome, rec = restore_of(world, backup, target=world.a, existing_policy="update")
    assert outcome.phase == "Completed" and outcome.updated == 1
    assert rec.item("configmaps", ns, "settings").outcome == "updated"
    assert live(world.kube_a, "configmaps", ns, "settings")["data"] == {"mode": "on", "level": "3"}
    _r, outcome, rec = restore_of(world, backup, target=world.a, existing_policy="update")
    assert outcome.updated == 0 and outcome.skipped == outcome.total  # now equal


# --- 3. previews --------------------------------------------------------------------------


def test_a_preview_changes_nothing_and_predicts_the_restore(world, kube_a, fresh_namespace):
    ns = fresh_namespace
    fill(kube_a, ns)
    target = Target(world.kube_a, None)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "worker"},
           "spec": {"serviceAccountName": "robot",
                    "containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    assert target.request("POST", f"/api/v1/namespaces/{ns}/pods", pod).ok
    backup = backup_of(world, include_namespaces=[ns])
    merge = "application/merge-patch+json"
    target.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings",
                   {"data": {"mode": "off"}}, content_type=merge)  # fmt: skip
    gone = [f"/api/v1/namespaces/{ns}/secrets/creds",
            f"/apis/demo.palette.io/v1/namespaces/{ns}/widgets/gizmo",
            # a pod whose service account is gone too (the restore creates the account first)
            f"/api/v1/namespaces/{ns}/pods/worker", f"/api/v1/namespaces/{ns}/serviceaccounts/robot"]  # fmt: skip
    for path in gone:
        assert target.request("DELETE", path).ok
    for path in gone:
        wait_gone(world.kube_a, path)

    for policy in ("none", "update"):
        before = state(world.kube_a, [ns])
        _r, preview, predicted = restore_of(
            world, backup, target=world.a, is_preview=True, existing_policy=policy
        )
        assert preview.phase == "Completed", preview.error
        assert state(world.kube_a, [ns]) == before  # nothing changed, not even a label
        assert not world.provider.exists(world.layout.restore_file(_r.name, "results"))
        expected = "skipped_exists" if policy == "none" else "updated"
        assert predicted.outcomes()[("configmaps", ns, "settings")] == expected
        assert predicted.outcomes()[("secrets", ns, "creds")] == "created"
        assert predicted.outcomes()[("serviceaccounts", ns, "robot")] == "created"
        assert predicted.outcomes()[("pods", ns, "worker")] == "created"

    _r, real, done = restore_of(world, backup, target=world.a, existing_policy="update")
    assert real.phase == "Completed"
    assert done.outcomes() == predicted.outcomes()
    assert (real.created, real.updated, real.skipped) == (
        preview.created,
        preview.updated,
        preview.skipped,
    )

    # Into namespaces that do not exist yet: everything would be created, nothing is.
    mapping = mapped(world, [ns])
    _r, preview, predicted = restore_of(world, backup, namespace_mapping=mapping, is_preview=True)
    # the definition exists on B; the new namespace's controllers make its default account
    assert preview.phase == "Completed" and preview.created == preview.total - 2
    assert predicted.outcomes()[(CRD, "", "widgets.demo.palette.io")] == "skipped_equal"
    account = predicted.item("serviceaccounts", mapping[ns], "default")
    assert account.outcome == "skipped_equal" and "made by the cluster" in account.message
    assert live(world.kube_b, "namespaces", "", mapping[ns]) is None
    assert (
        "not checked by the server" in predicted.item("configmaps", mapping[ns], "settings").message
    )
    _r, real, done = restore_of(world, backup, namespace_mapping=mapping)
    assert real.phase == "Completed"
    assert set(done.outcomes().values()) <= {"created", "skipped_equal"}
    assert set(done.outcomes()) == set(predicted.outcomes())


# --- 4. damaged archives ------------------------------------------------------------------


@pytest.mark.parametrize("keep_checksum", [True, False])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_archive_fails_before_anything_is_created(world, damage, keep_checksum):
    backup = backup_of(world, include_namespaces=["shop"])
    path = Path(world.location.path) / world.layout.backup_file(backup.name, "archive")
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    else:
        del blob[len(blob) * 2 // 3 :]
    path.write_bytes(bytes(blob))
    if not keep_checksum:  # a backup imported without a checksum: the gzip CRC still tells
        backup.sha256 = ""
        backup.save()
    mapping = mapped(world, ["shop"])
    _r, outcome, rec = restore_of(world, backup, namespace_mapping=mapping)
    assert outcome.phase == "Failed" and outcome.total == 0 and rec.items == []
    if keep_checksum:
        assert outcome.error.startswith("The archive's checksum does not match the backup")
        assert f"expected {backup.sha256}" in outcome.error
    else:
        assert outcome.error.startswith("The archive is damaged: ")
    assert live(world.kube_b, "namespaces", "", mapping["shop"]) is None
    assert not any("Kubernetes v" in line for line in rec.lines)  # never even connected
