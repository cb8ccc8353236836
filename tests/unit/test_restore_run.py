"""run_restore's refusals that need no cluster: each ends Failed, with a reason, early."""

from __future__ import annotations

from types import SimpleNamespace

from backups.engine.restore import run_restore


class NoStore:
    """Records what the engine asks of the store; downloading is a test failure."""

    def __init__(self):
        self.calls = []

    def put_bytes(self, key, data, content_type=""):
        self.calls.append("put_bytes")

    def open_read(self, key):
        raise AssertionError(f"the archive was downloaded: {key}")


def restore(**fields):
    backup = SimpleNamespace(name="b1", sha256="", location=SimpleNamespace(prefix="velero"))
    defaults = dict(
        name="r1", backup=backup, backup_name="b1", target_cluster=SimpleNamespace(kubeconfig=""),
        target_cluster_name="c", is_preview=False, namespace_mapping={}, label_selector="",
        include_namespaces=[], exclude_namespaces=[], include_resources=[], exclude_resources=[],
        cluster_resources="auto", restore_pvs=False, preserve_node_ports=False,
        existing_policy="none",
    )  # fmt: skip
    defaults.update(fields)
    return SimpleNamespace(**defaults)


def run(row):
    store, lines, records = NoStore(), [], []
    outcome = run_restore(
        row, store, progress=lambda *a: None, log=lines.append, record=records.extend
    )
    return outcome, store, lines, records


def test_bad_options_fail_before_the_archive_is_downloaded():
    outcome, store, lines, records = run(restore(namespace_mapping={"shop": "Shop Copy"}))
    assert outcome.phase == "Failed" and "names no valid namespace" in outcome.error
    assert set(store.calls) == {"put_bytes"}  # only the restore's own log and results
    assert records == [] and outcome.total == 0
    outcome, _store, _lines, _records = run(restore(label_selector="tier in (a"))
    assert outcome.phase == "Failed" and "label selector" in outcome.error


def test_a_missing_backup_or_cluster_is_a_clear_failure():
    outcome, *_ = run(restore(backup=None, is_preview=True))
    assert (outcome.phase, outcome.error) == (
        "Failed",
        "The backup of this restore no longer exists.",
    )
    outcome, *_ = run(restore(target_cluster=None, is_preview=True))
    assert outcome.error == "The target cluster of this restore no longer exists."
