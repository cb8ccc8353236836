"""run_restore's refusals that need no cluster: each ends Failed, with a reason, early."""

from __future__ import annotations

from dataclasses import replace

from backups.engine.inputs import ClusterConnection, RestoreRequest, RestoreSpec, Store
from backups.engine.restore.run import run_restore


class NoStore:
    """Records what the engine asks of the store; downloading is a test failure."""

    def __init__(self):
        self.calls = []

    def put_bytes(self, key, data, content_type=""):
        self.calls.append("put_bytes")

    def open_read(self, key):
        raise AssertionError(f"the archive was downloaded: {key}")


def restore(**spec) -> RestoreRequest:
    return RestoreRequest(
        name="r1",
        backup_name="b1",
        cluster=ClusterConnection("c", kubeconfig=""),
        store=Store(NoStore(), "loc", "velero"),
        spec=replace(RestoreSpec(), **spec),
    )


def run(request: RestoreRequest, should_stop=lambda: False):
    lines, records = [], []
    outcome = run_restore(
        request,
        progress=lambda *a: None,
        log=lines.append,
        record=records.extend,
        should_stop=should_stop,
    )
    return outcome, request.store.provider, lines, records


def test_bad_options_fail_before_the_archive_is_downloaded():
    outcome, store, lines, records = run(restore(namespace_mapping={"shop": "Shop Copy"}))
    assert outcome.phase == "Failed" and "names no valid namespace" in outcome.error
    assert set(store.calls) == {"put_bytes"}  # only the restore's own log and results
    assert records == [] and outcome.total == 0
    outcome, _store, _lines, _records = run(restore(label_selector="tier in (a"))
    assert outcome.phase == "Failed" and "label selector" in outcome.error


def test_a_missing_archive_is_a_clear_failure(tmp_path):
    from locations.providers.filesystem import FilesystemProvider

    request = replace(restore(), store=Store(FilesystemProvider(str(tmp_path)), "loc", "velero"))
    outcome, *_ = run(request)
    assert outcome.phase == "Failed" and "is not in the location" in outcome.error
    # The restore's own log and results were still written, in Velero's layout.
    assert (tmp_path / "velero/restores/r1/restore-r1-results.gz").is_file()


def test_a_cancelled_restore_stops_before_the_cluster_and_writes_nothing(tmp_path):
    from locations.providers.filesystem import FilesystemProvider
    from tests.unit.test_restore_archive import our_archive

    provider = FilesystemProvider(str(tmp_path))
    provider.put_bytes("velero/backups/b1/b1.tar.gz", our_archive())
    request = replace(restore(), store=Store(provider, "loc", "velero"))
    # The kubeconfig is empty: reaching for the cluster would fail the restore instead.
    outcome, _, lines, records = run(request, should_stop=lambda: True)
    assert outcome.phase == "Cancelled" and outcome.error == ""
    assert records == [] and any("Restore cancelled" in line for line in lines)
    assert not (tmp_path / "velero/restores").exists()  # no results for a cancelled restore
