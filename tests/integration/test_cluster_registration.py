"""Registering the real local clusters, and the real reasons a check can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from tests import factories
from workspaces.kube import check_health
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = pytest.mark.integration


def kubeconfig_text(devenv, cluster: str) -> str:
    return Path(devenv[f"CLUSTER_{cluster}_KUBECONFIG"]).read_text()


def test_the_command_registers_a_real_cluster_and_reads_its_health(db, devenv, capsys):
    factories.workspace("Demo")
    call_command(
        "register_cluster", "cluster-a", "--workspace", "demo",
        "--kubeconfig", devenv["CLUSTER_A_KUBECONFIG"],
        "--etcd-endpoint", devenv["CLUSTER_A_ETCD_ENDPOINT"],
        "--etcd-ca", devenv["CLUSTER_A_ETCD_CA"], "--etcd-cert", devenv["CLUSTER_A_ETCD_CERT"],
        "--etcd-key", devenv["CLUSTER_A_ETCD_KEY"],
    )  # fmt: skip
    cluster = Cluster.objects.get(name="cluster-a")
    assert cluster.health == Cluster.Health.HEALTHY
    assert cluster.server_version.startswith("v1.36")
    assert {"default", "kube-system"} <= set(cluster.namespaces)
    assert "healthy" in capsys.readouterr().out
    assert cluster.etcd_key.startswith("-----BEGIN")


def test_a_person_registers_a_cluster_by_upload_and_checks_it(db, devenv, client):
    admin = factories.user("admin")
    ws = factories.workspace("Platform")
    ws.grant(Role.ADMIN, user=admin)
    client.force_login(admin)
    upload = SimpleUploadedFile("kubeconfig", kubeconfig_text(devenv, "B").encode())
    response = client.post(
        reverse("cluster_register", args=[ws.slug]), {"name": "cluster-b", "kubeconfig": upload}
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "registered: v1.36" in page
    response = client.post(reverse("cluster_health", args=["cluster-b"]), HTTP_HX_REQUEST="true")
    assert "Healthy" in response.content.decode()
    assert "kube-system" in response.content.decode()


def test_a_wrong_certificate_authority_is_a_tls_failure(devenv):
    config_a = yaml.safe_load(kubeconfig_text(devenv, "A"))
    config_b = yaml.safe_load(kubeconfig_text(devenv, "B"))
    # Cluster B's server, but trusting cluster A's CA only.
    config_b["clusters"][0]["cluster"]["certificate-authority-data"] = config_a["clusters"][0][
        "cluster"
    ]["certificate-authority-data"]
    health = check_health(yaml.safe_dump(config_b))
    assert not health.reachable
    assert "TLS failed" in health.message


def test_rejected_credentials_are_a_401(devenv):
    config = yaml.safe_load(kubeconfig_text(devenv, "A"))
    config["users"][0]["user"] = {"token": "SENTINEL-not-a-valid-token"}
    health = check_health(yaml.safe_dump(config))
    assert not health.reachable
    assert "401 Unauthorized" in health.message
    assert "SENTINEL" not in health.message
