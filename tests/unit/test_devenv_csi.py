"""devenv's CSI wiring: the objects name one driver, the ports and socket paths fit."""

from __future__ import annotations

from devenv import config, csi
from devenv.clusters import CLUSTERS


def test_every_object_names_the_driver():
    by_kind = {o["kind"]: o for o in csi.objects()}
    assert by_kind["CSIDriver"]["metadata"]["name"] == csi.DRIVER_NAME
    assert by_kind["StorageClass"]["provisioner"] == csi.DRIVER_NAME
    assert by_kind["StorageClass"]["metadata"]["name"] == csi.env()["STORAGE_CLASS_CSI"]
    snap_class = by_kind["VolumeSnapshotClass"]
    assert snap_class["driver"] == csi.DRIVER_NAME
    assert snap_class["metadata"]["name"] == csi.env()["VOLUME_SNAPSHOT_CLASS"]
    # Velero (and the console) pick the snapshot class of a driver by this label.
    assert snap_class["metadata"]["labels"] == {"velero.io/csi-volumesnapshot-class": "true"}
    # No attacher runs: the kubelet must not wait for a VolumeAttachment.
    assert by_kind["CSIDriver"]["spec"]["attachRequired"] is False


def test_ports_are_distinct_and_every_piece_has_one():
    ports = list(config.PORTS.values())
    assert len(ports) == len(set(ports)), sorted(ports)
    for c in CLUSTERS.values():
        assert {s.port for s in csi.services(c)} == {csi.port(c, p) for p in csi.PIECES}
        assert [s.name for s in csi.services(c)] == [csi.service_name(c, p) for p in csi.PIECES]


def test_sidecars_talk_to_the_driver_socket_of_their_cluster():
    for c in CLUSTERS.values():
        argv = {s.name: s.argv for s in csi.services(c)}
        for piece in ("csi-provisioner", "csi-snapshotter"):
            assert f"--csi-address={csi.socket_path(c)}" in argv[csi.service_name(c, piece)]
            assert f"--kubeconfig={c.kubeconfig}" in argv[csi.service_name(c, piece)]
        driver = argv[csi.service_name(c, "csi-hostpath")]
        assert f"--endpoint={csi.socket_path(c)}" in driver
        assert f"--registration-dir={csi.registration_socket(c).parent}" in driver
