"""The worker nodes' configuration files: what NODES.md says each must hold."""

from __future__ import annotations

import json
import tomllib

import pytest
import yaml
from cryptography import x509

from devenv import config, images, nodeconfig
from devenv.clusters import CLUSTERS


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "STATE_DIR", tmp_path)
    c = CLUSTERS["b"]
    nodeconfig.prepare(c)
    return c, nodeconfig.node_dir(c)


def test_containerd_keeps_everything_under_the_node_dir_and_pulls_nothing(node):
    c, d = node
    conf = tomllib.loads((d / "containerd.toml").read_text())
    assert conf["version"] == 3
    for path in (conf["root"], conf["state"], conf["grpc"]["address"]):
        assert path.startswith(str(d))
    plugins = conf["plugins"]
    runtime = plugins["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True  # root lacks CAP_SYS_RESOURCE here
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]
    assert runc["disable_pause_image_pull"] is True
    assert runc["options"]["BinaryName"].startswith(str(config.CACHE_DIR))
    assert plugins["io.containerd.shim.v1.manager"]["socket_dir"].startswith(str(d))
    img = plugins["io.containerd.cri.v1.images"]
    assert img["pinned_images"]["sandbox"] == images.PAUSE_IMAGE
    hosts = (d / "certs.d" / "_default" / "hosts.toml").read_text()
    assert 'server = "http://127.0.0.1:9"' in hosts  # a pull fails on loopback, at once


def test_pods_get_no_default_route(node):
    c, d = node
    conf = json.loads((d / "cni" / "net.d" / "10-palette.conflist").read_text())
    bridge = conf["plugins"][0]
    assert bridge["bridge"] == "palette-b0" and bridge["ipMasq"] is False
    assert bridge["ipam"]["routes"] == [{"dst": f"{nodeconfig.node_ip()}/32"}]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24"}]]


def test_kubelet_serves_a_cluster_signed_cert_and_trusts_only_client_certs(node):
    c, d = node
    kc = yaml.safe_load((d / "kubelet.yaml").read_text())
    assert kc["cgroupRoot"] == "/palette-devenv-b" and kc["failCgroupV1"] is False
    assert kc["authentication"]["anonymous"]["enabled"] is False
    assert kc["authentication"]["x509"]["clientCAFile"] == str(c.pki / "ca.crt")
    assert kc["authorization"]["mode"] == "Webhook"
    assert kc["port"] == config.PORTS["kubelet-b"] and kc["readOnlyPort"] == 0
    serving = x509.load_pem_x509_certificate((d / "pki" / "kubelet-serving.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((c.pki / "ca.crt").read_bytes())
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert nodeconfig.node_ip() in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    client = x509.load_pem_x509_certificate((d / "pki" / "kubelet-client.crt").read_bytes())
    assert client.subject.rfc4514_string() == "CN=system:node:palette-node-b,O=system:nodes"


def test_prepare_twice_keeps_the_certificates(node):
    c, d = node
    before = (d / "pki" / "kubelet-serving.crt").read_bytes()
    nodeconfig.prepare(c)
    assert (d / "pki" / "kubelet-serving.crt").read_bytes() == before
