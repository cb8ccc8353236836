"""velero-backup.json, results and the small helpers, as Velero reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backups.engine.inputs import BackupSpec
from backups.engine.velero.format import (
    ResourceList,
    Results,
    backup_document,
    go_duration,
    rfc3339,
)


def options(**extra) -> BackupSpec:
    return BackupSpec(**extra)


START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_go_durations_and_timestamps():
    assert go_duration(timedelta(hours=720)) == "720h0m0s"
    assert go_duration(timedelta(hours=1, minutes=30, seconds=5)) == "1h30m5s"
    assert go_duration(timedelta(days=2)) == "48h0m0s"
    assert rfc3339(START) == "2026-03-01T12:00:00Z"


def test_backup_document_for_a_default_backup():
    doc = backup_document(
        name="b1",
        location_name="store",
        options=options(),
        phase="InProgress",
        started=START,
        expires=START + timedelta(hours=720),
        version={"gitVersion": "v1.36.3", "major": "1", "minor": "36"},
    )
    assert doc["apiVersion"] == "velero.io/v1" and doc["kind"] == "Backup"
    assert doc["metadata"]["name"] == "b1"
    assert doc["metadata"]["labels"] == {"velero.io/storage-location": "store"}
    assert doc["metadata"]["annotations"]["velero.io/source-cluster-k8s-gitversion"] == "v1.36.3"
    assert doc["metadata"]["annotations"]["velero.io/source-cluster-k8s-minor-version"] == "36"
    spec = doc["spec"]
    assert spec["includedNamespaces"] == ["*"] and spec["ttl"] == "720h0m0s"
    assert spec["storageLocation"] == "store"
    assert "includeClusterResources" not in spec  # auto is Velero's null
    assert "labelSelector" not in spec
    status = doc["status"]
    assert status["phase"] == "InProgress" and status["formatVersion"] == "1.1.0"
    assert status["startTimestamp"] == "2026-03-01T12:00:00Z"
    assert status["expiration"] == "2026-03-31T12:00:00Z"
    assert "completionTimestamp" not in status


def test_backup_document_mirrors_every_option():
    doc = backup_document(
        name="b2",
        location_name="store",
        options=options(
            include_namespaces=["shop"],
            exclude_namespaces=["kube-system"],
            include_resources=["configmaps"],
            exclude_resources=["secrets"],
            cluster_resources="never",
            label_selector="app=shop,tier in (a,b)",
            include_disks=True,
            ttl=timedelta(hours=24),
        ),
        phase="PartiallyFailed",
        started=START,
        expires=START + timedelta(hours=24),
        finished=START + timedelta(minutes=1),
        items_total=10,
        items_done=10,
        errors=2,
        warnings=1,
        schedule_name="nightly",
    )
    spec, status = doc["spec"], doc["status"]
    assert spec["includedNamespaces"] == ["shop"] and spec["excludedNamespaces"] == ["kube-system"]
    assert spec["includedResources"] == ["configmaps"] and spec["excludedResources"] == ["secrets"]
    assert spec["includeClusterResources"] is False and spec["ttl"] == "24h0m0s"
    assert spec["defaultVolumesToFsBackup"] is True
    assert spec["labelSelector"] == {
        "matchLabels": {"app": "shop"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    }
    assert doc["metadata"]["labels"]["velero.io/schedule-name"] == "nightly"
    assert status["progress"] == {"totalItems": 10, "itemsBackedUp": 10}
    assert status["errors"] == 2 and status["warnings"] == 1
    assert status["completionTimestamp"] == "2026-03-01T12:01:00Z"
    assert backup_document(
        name="b", location_name="s", options=options(cluster_resources="always"),
        phase="Failed", started=START, expires=START, failure_reason="boom",
    )["spec"]["includeClusterResources"] is True  # fmt: skip


def test_results_group_messages_by_where_they_happened():
    results = Results()
    results.error("list failed", namespace="shop")
    results.error("pv failed", cluster=True)
    results.warning("disks not backed up")
    assert results.errors == 2 and results.warnings == 1
    assert results.as_dict() == {
        "errors": {"velero": [], "cluster": ["pv failed"], "namespaces": {"shop": ["list failed"]}},
        "warnings": {"velero": ["disks not backed up"], "cluster": [], "namespaces": {}},
    }
    assert results.messages("errors") == ["pv failed", "namespace shop: list failed"]


def test_resource_list_is_sorted():
    rl = ResourceList()
    rl.add("v1/ConfigMap", ["b/x", "a/y"])
    rl.add("apps/v1/Deployment", [])
    rl.add("v1/ConfigMap", ["a/a"])
    assert rl.as_dict() == {"v1/ConfigMap": ["a/a", "a/y", "b/x"]}
    assert len(rl) == 3


def test_the_resource_list_keeps_names_compactly_and_writes_them_sorted():
    import gzip
    import json

    from backups.engine.velero.format import ResourceList

    listed = ResourceList()
    listed.add("v1/ConfigMap", ["shop/b", "shop/a"])
    listed.add("v1/ConfigMap", [])
    listed.add("v1/ConfigMap", ["billing/z", "shop/é"])
    listed.add("v1/Namespace", ["shop"])
    listed.add("apps/v1/Deployment", [])
    expected = {
        "v1/ConfigMap": ["billing/z", "shop/a", "shop/b", "shop/é"],
        "v1/Namespace": ["shop"],
    }
    assert listed.as_dict() == expected and len(listed) == 5
    assert json.loads(gzip.decompress(listed.gz())) == expected
