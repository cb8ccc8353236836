"""Done-when 2 of the integrations issue: examples/api-cycle.sh, with curl and a token
only, backs up a namespace of cluster A, waits, lists the contents, previews and
confirms a restore into cluster B, and prints the per-item results. Run against a
live console and a real Celery worker; the objects are then checked in cluster B."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from kubernetes import client
from kubernetes.client.rest import ApiException

from devenv.testing import unique
from tests import factories
from tests.browser.conftest import worker  # noqa: F401  (a real Celery worker in a thread)
from workspaces.kube import flatten_kubeconfig
from workspaces.models import Cluster
from workspaces.roles import Role

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "api-cycle.sh"
CONFIGMAPS = 5


def register(ws, name: str, kubeconfig: str) -> Cluster:
    path = Path(kubeconfig)
    text = flatten_kubeconfig(path.read_text(), path.parent)
    return Cluster.objects.create(workspace=ws, name=name, kubeconfig=text)


@pytest.fixture
def mapped_namespace_b(kube_b):
    """A unique name for the restored namespace in B, deleted afterwards."""
    name = unique("api-copy")
    yield name
    with contextlib.suppress(ApiException):
        client.CoreV1Api(kube_b).delete_namespace(name)


@pytest.mark.usefixtures("worker")
def test_the_curl_script_drives_a_whole_cycle(
    devenv, kube_a, kube_b, fresh_namespace, mapped_namespace_b, live_server, tmp_path, capsys
):  # fmt: skip
    core_a = client.CoreV1Api(kube_a)
    for i in range(CONFIGMAPS):
        core_a.create_namespaced_config_map(
            fresh_namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"settings-{i}"), data={"n": str(i)}
            ),
        )
    operator = factories.user(unique("ops"))
    ws = factories.workspace(unique("API"))
    ws.grant(Role.OPERATOR, user=operator)
    source = register(ws, unique("a"), devenv["CLUSTER_A_KUBECONFIG"])
    target = register(ws, unique("b"), devenv["CLUSTER_B_KUBECONFIG"])
    (tmp_path / "store").mkdir()
    location = factories.location(ws, unique("disk"), path=str(tmp_path / "store"), is_default=True)
    call_command("create_token", operator.username, "--name", "cycle", "--expires-in", "1h")
    token = capsys.readouterr().out.strip()

    done = subprocess.run(
        ["sh", str(SCRIPT)],
        env={**os.environ, "PALETTE_URL": live_server.url, "PALETTE_TOKEN": token,
             "CLUSTER": source.name, "LOCATION": location.name, "NAMESPACE": fresh_namespace,
             "TARGET": target.name, "MAP_TO": mapped_namespace_b, "TIMEOUT": "300"},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"^backup \S+ started$", out, re.M)
    assert "backup phase: Completed" in out
    assert re.search(rf"^  v1/ConfigMap: {CONFIGMAPS + 1}$", out, re.M), out  # + kube-root-ca.crt
    assert "preview phase: Completed" in out
    assert re.search(r"^preview would create [1-9]\d* objects$", out, re.M), out
    assert "restore phase: Completed" in out
    created = re.search(r"^\s+(\d+) created$", out, re.M)
    assert created and int(created[1]) >= CONFIGMAPS, out
    restored = client.CoreV1Api(kube_b).list_namespaced_config_map(mapped_namespace_b).items
    names = {item.metadata.name for item in restored}
    assert {f"settings-{i}" for i in range(CONFIGMAPS)} <= names
