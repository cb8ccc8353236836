"""The local clusters' worker nodes (issue 11): pods run, the API reaches the kubelet, volumes
of the local-path class keep their bytes, controllers heal and clean up."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pytest

from devenv.testing import need, unique
from devenv.testing import wait_for as _wait

pytestmark = pytest.mark.integration

DEMO_NAMESPACES = ("shop", "billing", "monitoring")


def _core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


def _pod(name: str, image: str, claim: str | None = None, command=None) -> dict:
    container = {"name": "app", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    spec = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if claim:
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _running(core, ns: str, name: str, timeout: float = 60):
    def check():
        pod = core.read_namespaced_pod(name, ns)
        return pod if pod.status.phase == "Running" else None

    return _wait(check, timeout, f"pod {ns}/{name} to run")


def _kubectl(env: dict, *args: str, timeout: float = 60) -> str:
    out = subprocess.run(
        [env["KUBECTL"], "--kubeconfig", env["CLUSTER_A_KUBECONFIG"], *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
    return out.stdout


def _gone(read) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        read()
    except ApiException as err:
        return err.status == 404
    return False


def test_env_names_the_nodes_class_and_image(devenv):
    need(devenv, "CLUSTER_A_NODE", "CLUSTER_B_NODE", "STORAGE_CLASS_LOCAL", "DEMO_APP_IMAGE")
    assert devenv["CLUSTER_A_NODE"] != devenv["CLUSTER_B_NODE"]


@pytest.mark.parametrize("cluster", ["a", "b"])
def test_each_cluster_has_one_ready_node(devenv, request, cluster):
    core = _core(request.getfixturevalue(f"kube_{cluster}"))
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == [devenv[f"CLUSTER_{cluster.upper()}_NODE"]]
    conditions = {c.type: c.status for c in nodes[0].status.conditions}
    assert conditions["Ready"] == "True"
    assert not [t for t in nodes[0].spec.taints or [] if t.effect == "NoSchedule"]
    sc = {s.metadata.name: s for s in _storage(request, cluster).list_storage_class().items}
    local = sc[devenv["STORAGE_CLASS_LOCAL"]]
    assert local.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"


def _storage(request, cluster):
    from kubernetes import client

    return client.StorageV1Api(request.getfixturevalue(f"kube_{cluster}"))


@pytest.mark.parametrize("cluster", ["a", "b"])
def test_seeded_deployments_have_running_pods(request, cluster):
    from kubernetes import client

    api = request.getfixturevalue(f"kube_{cluster}")
    apps = client.AppsV1Api(api)

    def all_ready():
        for ns in DEMO_NAMESPACES:
            for d in apps.list_namespaced_deployment(ns).items:
                if (d.status.ready_replicas or 0) < d.spec.replicas:
                    return False
        return True

    _wait(all_ready, 120, f"the demo Deployments of cluster {cluster} to be ready")
    pods = _core(api).list_namespaced_pod("shop").items
    assert pods and all(
        p.status.phase == "Running" for p in pods if not p.metadata.deletion_timestamp
    )
    assert {p.status.pod_ip.rsplit(".", 1)[0] for p in pods} == {
        "10.244.1" if cluster == "a" else "10.244.2"
    }


def test_logs_exec_attach_and_port_forward_through_the_api(devenv, kube_a, fresh_namespace):
    core = _core(kube_a)
    ns = fresh_namespace
    core.create_namespaced_pod(ns, _pod("web", devenv["DEMO_APP_IMAGE"]))
    _running(core, ns, "web")
    _wait(
        lambda: "serving HTTP" in core.read_namespaced_pod_log("web", ns),
        20,
        "the app's log line",
    )
    out = _kubectl(devenv, "-n", ns, "exec", "web", "--", "app", "checksum", "--dir", "/bin")
    assert re.fullmatch(r"[0-9a-f]{64}  app\n", out), out

    def kubectl(*args: str) -> subprocess.Popen:
        argv = [devenv["KUBECTL"], "--kubeconfig", devenv["CLUSTER_A_KUBECONFIG"], "-n", ns]
        return subprocess.Popen(
            [*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    # attach streams what the container writes from now on: the request below is logged.
    attach = kubectl("attach", "web")
    forward = kubectl("port-forward", "pod/web", ":8080")
    try:
        line = forward.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        time.sleep(1)  # attach connects meanwhile
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/attached", timeout=10) as resp:  # noqa: S310
            assert b"palette demo app on web" in resp.read()
        # The app logs to stderr, which attach relays after two lines of its own.
        lines = [attach.stdout.readline() for _ in range(3)]
        assert any("GET /attached" in line for line in lines), lines
    finally:
        for proc in (forward, attach):
            proc.terminate()
            proc.wait(timeout=10)


def test_local_path_volume_keeps_its_bytes_across_pods(devenv, kube_a, fresh_namespace):
    from kubernetes import client

    core = _core(kube_a)
    ns = fresh_namespace
    core.create_namespaced_persistent_volume_claim(
        ns,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="data"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name=devenv["STORAGE_CLASS_LOCAL"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "16Mi"}),
            ),
        ),
    )
    core.create_namespaced_pod(ns, _pod("writer", devenv["DEMO_APP_IMAGE"], claim="data"))
    _running(core, ns, "writer", timeout=90)
    assert core.read_namespaced_persistent_volume_claim("data", ns).status.phase == "Bound"
    _kubectl(devenv, "-n", ns, "exec", "writer", "--", "app", "write", "--dir", "/data/x",
             "--files", "5", "--bytes", "50000")  # fmt: skip
    before = _kubectl(devenv, "-n", ns, "exec", "writer", "--", "app", "checksum", "--dir", "/data")
    assert len(before.splitlines()) == 5

    core.delete_namespaced_pod("writer", ns, grace_period_seconds=0)
    _wait(lambda: _gone(lambda: core.read_namespaced_pod("writer", ns)), 60, "the pod to go")
    core.create_namespaced_pod(ns, _pod("reader", devenv["DEMO_APP_IMAGE"], claim="data"))
    _running(core, ns, "reader")
    after = _kubectl(devenv, "-n", ns, "exec", "reader", "--", "app", "checksum", "--dir", "/data")
    assert after == before


def test_a_deleted_pod_comes_back_running_within_seconds(devenv, kube_a, fresh_namespace):
    from kubernetes import client

    core, apps = _core(kube_a), client.AppsV1Api(kube_a)
    ns = fresh_namespace
    labels = {"app": "heal"}
    apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "heal"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod("x", devenv["DEMO_APP_IMAGE"])["spec"],
                },
            },
        },
    )

    def running_pods():
        pods = core.list_namespaced_pod(ns, label_selector="app=heal").items
        return [
            p.metadata.name
            for p in pods
            if p.status.phase == "Running" and not p.metadata.deletion_timestamp
        ]

    (first,) = _wait(running_pods, 60, "the Deployment's pod to run")
    core.delete_namespaced_pod(first, ns)
    started = time.monotonic()
    (second,) = _wait(lambda: [p for p in running_pods() if p != first], 30, "a new pod")
    assert second != first
    assert time.monotonic() - started < 30


def test_a_namespace_with_pods_and_claims_finishes_deleting(devenv, kube_a):
    from kubernetes import client

    core = _core(kube_a)
    ns = unique("t-nsdel")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "8Mi"}},
            },
        },
    )  # the default class: local-path
    core.create_namespaced_pod(ns, _pod("holder", devenv["DEMO_APP_IMAGE"], claim="data"))
    _running(core, ns, "holder", timeout=90)
    pv = core.read_namespaced_persistent_volume_claim("data", ns).spec.volume_name
    assert pv

    core.delete_namespace(ns)
    _wait(lambda: _gone(lambda: core.read_namespace(ns)), 120, f"namespace {ns} to go")
    # Reclaim policy Delete: the provisioner removes the volume too.
    _wait(lambda: _gone(lambda: core.read_persistent_volume(pv)), 90, f"volume {pv} to go")


def test_stateful_demo_volume_holds_the_recorded_data(devenv, kube_a):
    from devenv import stateful

    core = _core(kube_a)
    recorded = core.read_namespaced_config_map("store-local-checksums", stateful.NAMESPACE)
    sums = recorded.data["sha256sums"]
    assert len(sums.splitlines()) == stateful.DATA_FILES
    pods = core.list_namespaced_pod(
        stateful.NAMESPACE, label_selector="app.kubernetes.io/name=store-local"
    ).items
    pod = next(p.metadata.name for p in pods if p.status.phase == "Running")
    out = _kubectl(devenv, "-n", stateful.NAMESPACE, "exec", pod, "--", "app", "checksum",
                   "--dir", "/data")  # fmt: skip
    assert out == sums


def test_pods_route_only_to_their_subnet_and_the_node(devenv, kube_a, fresh_namespace):
    """The network rule of these machines: a pod reaches its own network and the node's
    address, nothing else (no default route)."""
    from devenv import images, nodes

    core = _core(kube_a)
    ns = fresh_namespace
    pod = _pod("routes", images.BUSYBOX_IMAGE, command=["ip", "route"])
    pod["spec"]["restartPolicy"] = "Never"
    core.create_namespaced_pod(ns, pod)
    _wait(
        lambda: core.read_namespaced_pod("routes", ns).status.phase == "Succeeded",
        60,
        "the pod to print its routes",
    )
    routes = sorted(
        " ".join(line.split()[:3])
        for line in core.read_namespaced_pod_log("routes", ns).splitlines()
    )
    assert routes == ["10.244.1.0/24 dev eth0", f"{nodes.node_ip()} via 10.244.1.1"], routes


def test_the_demo_app_writes_and_checksums_what_it_promises(devenv, tmp_path):
    import hashlib

    from devenv import gobuild

    app = str(gobuild.IMAGE_PROGRAMS.paths()["app"])
    subprocess.run([app, "write", "--dir", str(tmp_path / "d"), "--files", "7", "--bytes",
                    "10001"], check=True, capture_output=True)  # fmt: skip
    (tmp_path / "d" / "sub").mkdir()
    (tmp_path / "d" / "sub" / "a b.txt").write_bytes(b"hello")
    files = sorted(p for p in (tmp_path / "d").rglob("*") if p.is_file())
    assert sum(p.stat().st_size for p in files) == 10001 + 5
    assert len({p.read_bytes() for p in files}) == 8  # random, so all different
    out = subprocess.run([app, "checksum", "--dir", str(tmp_path / "d")], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    expected = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(tmp_path / 'd')}\n"
        for p in sorted(files, key=lambda p: str(p.relative_to(tmp_path / "d")))
    )
    assert out == expected
    bad = subprocess.run([app, "write", "--files", "0"], capture_output=True, text=True)
    assert bad.returncode == 1 and "write needs --dir" in bad.stderr
