"""The guided restore: every step in order, with the snapshot's own values filled in."""

from __future__ import annotations

import pytest

from backups.engine.etcd.runbook import runbook
from backups.engine_inputs import etcd_endpoint
from backups.models import EtcdSnapshot, Status
from tests import factories

pytestmark = pytest.mark.django_db

SHA = "ab" * 32
MEMBERS = [
    {"name": "cp-1", "peer_urls": ["https://10.0.0.1:2380"], "id": "1"},
    {"name": "cp-2", "peer_urls": ["https://10.0.0.2:2380"], "id": "2"},
    {"name": "cp-3", "peer_urls": ["https://10.0.0.3:2380"], "id": "3"},
    {"name": "new", "peer_urls": ["https://10.0.0.4:2380"], "is_learner": True},
]


@pytest.fixture
def snapshot(db):
    ws = factories.workspace()
    cluster = factories.cluster(ws, "prod", etcd_endpoint="https://10.0.0.1:2379")
    location = factories.location(
        ws,
        provider="s3",
        bucket="backups",
        prefix="velero",
        region="eu-west-1",
        credentials={"access_key": "AKIA", "secret_key": "do-not-print"},
    )
    return _snapshot(
        cluster,
        location,
        name="prod-etcd-20250101000000",
        status=Status.COMPLETED,
        object_key="velero-etcd/prod/prod-etcd-20250101000000.db",
        sha256=SHA,
        size_bytes=22 * 1024 * 1024,
        revision=48213,
        etcd_version="3.6.16",
        member="cp-1",
    )


def _snapshot(cluster, location, **fields):
    return EtcdSnapshot.objects.create(
        workspace=cluster.workspace,
        cluster=cluster,
        cluster_name=cluster.name,
        location=location,
        **fields,
    )


def _by_key(steps):
    return {step.key: step for step in steps}


def test_the_steps_come_in_the_order_of_the_procedure(snapshot):
    steps = runbook(snapshot, etcd=etcd_endpoint(snapshot.cluster), members=MEMBERS)
    assert [s.key for s in steps] == [
        "download",
        "verify",
        "copy",
        "stop-apiservers",
        "stop-etcd",
        "restore",
        "start-etcd",
        "start-apiservers",
        "check",
    ]
    assert all(s.title and s.explanation and s.commands for s in steps)


def test_download_and_verify_use_the_stored_object_and_its_sha256(snapshot):
    steps = _by_key(
        runbook(
            snapshot,
            etcd=etcd_endpoint(snapshot.cluster),
            members=MEMBERS,
            download_url="https://console/etcd/7/dl",
        )
    )
    download = steps["download"]
    assert download.commands == [
        "aws s3 cp s3://backups/velero-etcd/prod/prod-etcd-20250101000000.db "
        "prod-etcd-20250101000000.db --region eu-west-1"
    ]
    assert "https://console/etcd/7/dl" in download.explanation
    assert "22.0 MiB" in download.explanation
    verify = steps["verify"]
    assert verify.commands == [
        f"echo '{SHA}  prod-etcd-20250101000000.db' | sha256sum --check -",
        "etcdutl snapshot status prod-etcd-20250101000000.db -w table",
    ]
    assert "48213" in verify.explanation and "3.6.16" in verify.explanation
    text = " ".join(c for s in steps.values() for c in s.commands + [s.explanation])
    assert "do-not-print" not in text and "AKIA" not in text


def test_each_voting_member_restores_with_its_own_name_and_peer_url(snapshot):
    steps = _by_key(runbook(snapshot, etcd=etcd_endpoint(snapshot.cluster), members=MEMBERS))
    restore = steps["restore"].commands
    assert len(restore) == 3  # the learner is left out (added back afterwards)
    initial = "cp-1=https://10.0.0.1:2380,cp-2=https://10.0.0.2:2380,cp-3=https://10.0.0.3:2380"
    for n, command in enumerate(restore, 1):
        assert f"# on cp-{n} (10.0.0.{n})" in command
        assert "sudo etcdutl snapshot restore /var/tmp/prod-etcd-20250101000000.db" in command
        assert "--data-dir /var/lib/etcd.restored" in command
        assert f"--name cp-{n} " in command
        assert f"--initial-cluster {initial} " in command
        assert f"--initial-advertise-peer-urls https://10.0.0.{n}:2380 " in command
        assert "--bump-revision 1000000" in command and command.endswith("--mark-compacted")
    assert steps["copy"].commands == [
        f"scp prod-etcd-20250101000000.db 10.0.0.{n}:/var/tmp/prod-etcd-20250101000000.db"
        for n in (1, 2, 3)
    ]
    start = steps["start-etcd"].commands
    assert start[0] == (
        "sudo mv /var/lib/etcd /var/lib/etcd.before-restore && "
        "sudo mv /var/lib/etcd.restored /var/lib/etcd"
    )
    assert start[2] == (
        "etcdctl --endpoints https://10.0.0.1:2379 --cacert <etcd-ca.crt> --cert <client.crt> "
        "--key <client.key> endpoint health --cluster"
    )


def test_apiservers_stop_before_etcd_and_start_after(snapshot):
    steps = _by_key(runbook(snapshot, etcd=etcd_endpoint(snapshot.cluster), members=MEMBERS))
    assert "kube-apiserver.yaml" in steps["stop-apiservers"].commands[0]
    assert "kube-controller-manager.yaml" in steps["stop-apiservers"].commands[0]
    assert "etcd.yaml" in steps["stop-etcd"].commands[0]
    assert "kube-apiserver.yaml" in steps["start-apiservers"].commands[0]
    assert "systemctl" in steps["stop-etcd"].explanation  # the systemd equivalent
    assert "kubectl get --raw='/readyz?verbose'" in steps["check"].commands


def test_unknown_values_are_clear_placeholders(snapshot):
    snapshot.member = "ddd67b312462fd7b"  # only the id was known
    snapshot.cluster.etcd_endpoint = ""
    steps = _by_key(
        runbook(snapshot, etcd=etcd_endpoint(snapshot.cluster), members=None, data_dir="/data/etcd")
    )
    (restore,) = steps["restore"].commands
    assert "--name <member-name>" in restore
    assert "--initial-cluster '<member-name>=https://<member-ip>:2380'" in restore
    assert "--data-dir /data/etcd.restored" in restore
    assert steps["copy"].commands == [
        "scp prod-etcd-20250101000000.db <member-host>:/var/tmp/prod-etcd-20250101000000.db"
    ]
    assert "<etcd-endpoint>" in steps["start-etcd"].commands[2]


def test_an_endpoint_that_does_not_answer_gives_placeholders_and_says_why(snapshot):
    snapshot.cluster.etcd_endpoint = "https://127.0.0.1:9"  # connection refused at once
    steps = _by_key(runbook(snapshot, etcd=etcd_endpoint(snapshot.cluster)))
    assert "could not ask etcd for its members" in steps["download"].explanation
    assert "connection refused" in steps["download"].explanation
    assert "--name cp-1" in steps["restore"].commands[0]  # the recorded member's name


@pytest.mark.parametrize(
    "fields, expected",
    [
        (
            dict(provider="minio", bucket="b", endpoint_url="http://minio:9000"),
            [
                "mc alias set palette http://minio:9000 <access-key> <secret-key>",
                "mc cp palette/b/p-etcd/prod/s1.db s1.db",
            ],
        ),
        (dict(provider="gcs", bucket="b"), ["gcloud storage cp gs://b/p-etcd/prod/s1.db s1.db"]),
        (
            dict(provider="azure", bucket="c", credentials={"account_name": "acct"}),
            [
                "az storage blob download --account-name acct --account-key <account-key> "
                "--container-name c --name p-etcd/prod/s1.db --file s1.db"
            ],
        ),
        (
            dict(
                provider="azure",
                bucket="c",
                credentials={"connection_string": "AccountName=fromconn;AccountKey=k"},
            ),
            [
                "az storage blob download --account-name fromconn --account-key <account-key> "
                "--container-name c --name p-etcd/prod/s1.db --file s1.db"
            ],
        ),
        (
            dict(provider="s3", bucket="b", endpoint_url="http://s3.local"),
            ["aws s3 cp s3://b/p-etcd/prod/s1.db s1.db --endpoint-url http://s3.local"],
        ),
        (
            dict(provider="filesystem", path="/srv/backups"),
            ["cp /srv/backups/p-etcd/prod/s1.db s1.db"],
        ),
    ],
)
def test_the_download_command_fits_the_store(snapshot, fields, expected):
    location = factories.location(snapshot.workspace, prefix="p", **fields)
    snap = _snapshot(snapshot.cluster, location, name="s1", sha256=SHA)
    steps = _by_key(runbook(snap, etcd=etcd_endpoint(snap.cluster), members=[]))
    assert steps["download"].commands == expected
    assert "AccountKey" not in " ".join(steps["download"].commands)


def test_a_snapshot_without_sha256_is_flagged(snapshot):
    snapshot.sha256 = ""
    steps = _by_key(runbook(snapshot, etcd=etcd_endpoint(snapshot.cluster), members=MEMBERS))
    assert "do not restore it" in steps["verify"].explanation
    assert not any("sha256sum" in c for c in steps["verify"].commands)
