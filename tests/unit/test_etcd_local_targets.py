"""Local etcd restore targets come from the server's list, and only superusers get the action."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from backups.engine.etcd.local import LocalTargetsError, find_local_target, load_local_targets
from backups.models import EtcdRestore, EtcdSnapshot, Status
from tests import factories


def target(endpoint: str, tmp_path, **extra) -> dict:
    return {
        "name": "x",
        "endpoint": endpoint,
        "data_dir": str(tmp_path / "etcd"),
        "initial_cluster": "default=http://127.0.0.1:1",
        "peer_url": "http://127.0.0.1:1",
        "etcdutl": "/bin/true",
        "control": ["/bin/false"],
        **extra,
    }


def write(tmp_path, *targets) -> str:
    path = tmp_path / "targets.json"
    path.write_text(json.dumps({"targets": list(targets)}))
    return str(path)


def test_the_list_is_read_and_matched_by_endpoint(tmp_path):
    path = write(
        tmp_path,
        target("https://127.0.0.1:12379", tmp_path),
        target("http://127.0.0.1:22379", tmp_path, name="y", etcdutl=str(tmp_path / "nope")),
    )
    (found,) = load_local_targets(path)  # a target whose etcdutl cannot run is left out
    assert found.name == "x" and found.member_name == "default"
    assert found.control == ("/bin/false",)
    assert find_local_target([found], "https://127.0.0.1:12379/") is found
    assert find_local_target([found], "https://127.0.0.1:12380") is None
    assert find_local_target([found], "") is None
    assert load_local_targets("") == [] and load_local_targets(tmp_path / "missing") == []
    (tmp_path / "bad.json").write_text('{"targets": [{"name": "x"}]}')
    with pytest.raises(LocalTargetsError, match="cannot be read"):
        load_local_targets(tmp_path / "bad.json")


@pytest.fixture
def done(world):
    EtcdSnapshot.objects.filter(pk=world.snapshot.pk).update(
        status=Status.COMPLETED, sha256="ab" * 32, object_key="k"
    )
    EtcdRestore.objects.filter(pk=world.etcd_restore.pk).update(status=Status.COMPLETED)
    return world


def test_only_a_superuser_is_offered_and_allowed_the_local_restore(done, login, settings, tmp_path):
    settings.PALETTE_ETCD_LOCAL_TARGETS = write(
        tmp_path, target(done.cluster.etcd_endpoint, tmp_path)
    )
    detail = reverse("etcd_snapshot_detail", args=[done.snapshot.pk])
    create = reverse("etcd_restore_create", args=[done.snapshot.pk])
    confirm = {"confirm_name": done.cluster.name}
    before = EtcdRestore.objects.count()

    admin = login(done.users["admin"])  # the workspace's Admin, not a superuser
    assert "Let the console do it" not in admin.get(detail).content.decode()
    assert admin.post(create, confirm).status_code == 403
    assert EtcdRestore.objects.count() == before

    root = login(factories.user("root", is_superuser=True))
    assert "Let the console do it" in root.get(detail).content.decode()
    assert root.post(create, confirm).status_code == 302
    assert EtcdRestore.objects.count() == before + 1


def test_a_cluster_outside_the_list_is_never_restored_by_the_console(done, login, settings):
    settings.PALETTE_ETCD_LOCAL_TARGETS = ""
    root = login(factories.user("root", is_superuser=True))
    detail = reverse("etcd_snapshot_detail", args=[done.snapshot.pk])
    assert "Let the console do it" not in root.get(detail).content.decode()
    response = root.post(
        reverse("etcd_restore_create", args=[done.snapshot.pk]),
        {"confirm_name": done.cluster.name},
        follow=True,
    )
    assert "cannot reach this cluster&#x27;s etcd hosts" in response.content.decode()
    assert not EtcdRestore.objects.filter(created_by__username="root").exists()
