from backups.engine.storage.layout import Layout


def test_backup_files_follow_velero():
    layout = Layout("/team/velero/")
    assert layout.backup_file("b1", "metadata") == "team/velero/backups/b1/velero-backup.json"
    assert layout.backup_file("b1", "archive") == "team/velero/backups/b1/b1.tar.gz"
    assert Layout("").backup_file("b1", "results") == "backups/b1/b1-results.gz"
    assert layout.restore_file("r1", "logs") == "team/velero/restores/r1/restore-r1-logs.gz"


def test_etcd_snapshots_live_beside_the_prefix():
    assert Layout("velero").etcd_file("a", "s1") == "velero-etcd/a/s1.db"
    assert not Layout("velero").etcd_root.startswith("velero/")


def test_unknown_top_level_folders_are_found():
    keys = ["p/backups/b/x", "p/metadata/y", "p/junk/z", "p/restores/r/q", "p/file.txt"]
    assert Layout("p").unknown_top_level(keys) == ["junk"]
    assert Layout("").unknown_top_level(["backups/a", "other/b"]) == ["other"]
