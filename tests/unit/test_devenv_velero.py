"""devenv's Velero: how it is built, and what a local server is started with."""

from __future__ import annotations

import json

from devenv import cli, config, gobuild, procs, velero

ENV = {
    "MINIO_ENDPOINT": "http://127.0.0.1:19000",
    "MINIO_ACCESS_KEY": "minio-user",
    "MINIO_SECRET_KEY": "minio-secret",
}


def server(**extra) -> velero.Server:
    values = dict(cluster="b", namespace="velero-abc", kubeconfig="/k/config", kubectl="kubectl",
                  bucket="bkt", prefix="console", metrics_port=40123)  # fmt: skip
    values.update(extra)
    return velero.Server(**values)


def test_velero_is_built_from_its_own_source_with_the_refused_pin_replaced():
    comp = gobuild.COMPONENTS["velero"]
    assert comp.source == f"github.com/vmware-tanzu/velero@{config.VELERO_VERSION}"
    assert comp.replace == ("k8s.io/cli-runtime=k8s.io/cli-runtime@v0.33.13",)
    assert comp.binaries == ("velero",)
    # controller-runtime's metrics server (no flag moves it) binds loopback only.
    assert (
        "-X sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress=127.0.0.1:0"
        in comp.ldflags
    )
    assert f"buildinfo.Version={config.VELERO_VERSION}" in comp.ldflags
    plugin = gobuild.COMPONENTS["velero-plugin-for-aws"]
    assert plugin.packages == ("./velero-plugin-for-aws",)
    assert plugin.paths()["velero-plugin-for-aws"].parent == plugin.bin_dir


def test_the_env_keys_point_at_the_binary_and_the_plugin_directory():
    keys = velero.env()
    assert keys["VELERO_BIN"] == str(gobuild.VELERO.paths()["velero"])
    assert keys["VELERO_PLUGIN_DIR"] == str(gobuild.VELERO_AWS_PLUGIN.bin_dir)


def test_the_server_listens_on_loopback_only():
    argv = velero.server_argv(server(), sync_period="5s")
    assert argv[:2] == [velero.velero_bin(), "server"]
    assert "--metrics-address=127.0.0.1:40123" in argv
    assert "--profiler-address=" in argv  # the profiler (default localhost:6060) is off
    assert "--namespace=velero-abc" in argv and "--kubeconfig=/k/config" in argv
    assert f"--plugin-dir={velero.plugin_dir()}" in argv
    assert "--backup-sync-period=5s" in argv
    assert not any(a.startswith("--features") for a in argv)  # none unless asked for


def test_a_csi_server_has_the_feature_flag_velero_1_18_still_asks_for():
    argv = velero.server_argv(server(), "5s", velero.CSI_FEATURES)
    assert argv[-1] == "--features=EnableCSI"


def test_the_location_is_minio_path_style_with_its_own_credentials():
    secret, bsl = velero._location_objects("velero-abc", "bkt", "console", ENV)
    assert secret["metadata"] == {"name": velero.SECRET, "namespace": "velero-abc"}
    assert secret["stringData"]["cloud"] == (
        "[default]\naws_access_key_id=minio-user\naws_secret_access_key=minio-secret\n"
    )
    spec = bsl["spec"]
    assert spec["objectStorage"] == {"bucket": "bkt", "prefix": "console"}
    assert spec["config"] == {
        "region": "minio", "s3ForcePathStyle": "true", "s3Url": "http://127.0.0.1:19000"
    }  # fmt: skip
    assert spec["credential"] == {"name": velero.SECRET, "key": "cloud"}
    assert spec["default"] is True
    _, at_root = velero._location_objects("velero-abc", "bkt", "", ENV)
    assert at_root["spec"]["objectStorage"] == {"bucket": "bkt"}


def test_install_keeps_the_namespace_account_and_a_deployment_that_never_runs(monkeypatch):
    listed = {
        "kind": "List",
        "items": [
            {"kind": "CustomResourceDefinition", "metadata": {"name": "backups.velero.io"}},
            {"kind": "Namespace", "metadata": {"name": "velero-abc"}},
            {"kind": "ClusterRoleBinding", "metadata": {"name": "velero-velero-abc"}},
            {"kind": "ServiceAccount", "metadata": {"name": "velero"}},
            {"kind": "Deployment", "metadata": {"name": "velero"}, "spec": {"replicas": 1}},
        ],
    }
    calls = []
    monkeypatch.setattr(velero, "run", lambda argv, **kw: calls.append(argv) or json.dumps(listed))
    kept = velero._install_objects("velero", "/k/config", "velero-abc")
    assert [o["kind"] for o in kept] == ["Namespace", "ServiceAccount", "Deployment"]
    assert kept[-1]["spec"]["replicas"] == 0
    assert "--namespace=velero-abc" in calls[0] and "--dry-run" in calls[0]
    assert "--kubeconfig=/k/config" in calls[0]  # install reads the cluster even when dry


def test_down_stops_only_velero_servers(monkeypatch):
    monkeypatch.setattr(procs, "tracked_names", lambda: ["etcd-a", "velero-b-velero-abc"])
    stopped = []
    monkeypatch.setattr(procs, "stop", lambda name, **kw: stopped.append(name) or True)
    assert velero.stop_all(log=lambda line: None) == ["velero-b-velero-abc"]
    assert stopped == ["velero-b-velero-abc"]


def test_up_reports_velero_and_writes_its_keys_once_built(monkeypatch):
    built = []
    monkeypatch.setattr(cli, "_build", lambda comp, *a: built.append(comp.name) or True)
    report, env = cli._Report(lambda line: None), {}
    assert cli._velero_built(report, env, {}, lambda line: None) == ["velero"]
    assert built == ["velero", "velero-plugin-for-aws"]
    assert env["VELERO_BIN"] == velero.velero_bin() and not report.failed
    monkeypatch.setattr(cli, "_build", lambda comp, *a: False)
    env = {}
    assert cli._velero_built(report, env, {}, lambda line: None) == [] and env == {}
