"""Crafted input to the forms and commands: a clear refusal (a form error, a message,
a CommandError), never a 500 or a traceback, and nothing half-saved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from backups import cron
from backups.models import BackupRun, EtcdPolicy, Schedule
from backups.scheduling import tick
from devenv.certs import new_ca, new_leaf, pem
from tests.factories import UNREACHABLE_KUBECONFIG
from workspaces.models import Cluster

GOOD = UNREACHABLE_KUBECONFIG.format(token="t")
KUBECONFIGS = {
    "contexts-of-strings": "kind: Config\ncontexts: [a, b]\ncurrent-context: a\n",
    "null-context": "kind: Config\ncontexts:\n- name: a\n  context: null\ncurrent-context: a\n",
    "context-a-list": "kind: Config\ncontexts:\n- name: a\n  context: [1]\ncurrent-context: a\n",
    "clusters-a-map": "kind: Config\nclusters: {a: b}\ncontexts: []\n",
    "nameless": "kind: Config\nclusters:\n- cluster: {server: https://x}\n",
    "current-a-list": GOOD.replace("current-context: ctx", "current-context: [ctx]"),
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nkind: Config\n",
    "deep": "[" * 5000 + "]" * 5000,
    "broken-ipv6": GOOD.replace("https://127.0.0.1:9", "http://[::1"),
    "port-out-of-range": GOOD.replace("https://127.0.0.1:9", "https://127.0.0.1:99999"),
    "ftp-server": GOOD.replace("https://127.0.0.1:9", "ftp://127.0.0.1"),
    "server-a-number": GOOD.replace("server: https://127.0.0.1:9", "server: 42"),
    "not-yaml": "{{{{",
    "a-list": "- 1\n- 2\n",
}


def _register(client, workspace, kubeconfig: str = GOOD, **fields):
    data = {
        "name": "crafted",
        "kubeconfig": SimpleUploadedFile("config", kubeconfig.encode()),
        **fields,
    }
    return client.post(reverse("cluster_register", args=[workspace.slug]), data)


@pytest.mark.parametrize("shape", KUBECONFIGS)
def test_malformed_kubeconfigs_are_refused_on_the_page(world, login, shape):
    response = _register(login(world.users["admin"]), world.workspace, KUBECONFIGS[shape])
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert not Cluster.objects.filter(name="crafted").exists()


@pytest.mark.parametrize("shape", KUBECONFIGS)
def test_malformed_kubeconfigs_are_refused_by_the_command(world, tmp_path, shape):
    path = tmp_path / "config"
    path.write_text(KUBECONFIGS[shape])
    with pytest.raises(CommandError, match="kubeconfig cannot be used"):
        call_command(
            "register_cluster", "crafted", "--workspace", world.workspace.slug,
            "--kubeconfig", str(path), "--allow-unreachable",
        )  # fmt: skip
    assert not Cluster.objects.filter(name="crafted").exists()


ENDPOINTS = ["ftp://10.0.0.5:2379", "https://10.0.0.5:99999", "http://[::1", "https://"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_etcd_endpoints_are_refused_not_saved(world, login, tmp_path, endpoint):
    response = _register(login(world.users["admin"]), world.workspace, etcd_endpoint=endpoint)
    assert response.status_code == 200 and b'role="alert"' in response.content
    path = tmp_path / "config"
    path.write_text(GOOD)
    with pytest.raises(CommandError):
        call_command(
            "register_cluster", "crafted", "--workspace", world.workspace.slug,
            "--kubeconfig", str(path), "--etcd-endpoint", endpoint, "--allow-unreachable",
        )  # fmt: skip
    assert not Cluster.objects.filter(name="crafted").exists()


def test_garbage_pem_is_refused_and_real_pem_accepted(world, login):
    client = login(world.users["admin"])
    garbage = {"etcd_endpoint": "https://127.0.0.1:19", "etcd_ca": "not a certificate"}
    response = _register(client, world.workspace, **garbage)
    assert b"not a PEM certificate" in response.content
    ca_key, ca = new_ca("ca")
    key, cert = new_leaf(ca_key, ca, "console", client=True)
    _, other = new_leaf(ca_key, ca, "someone-else", client=True)
    mismatched = {**garbage, "etcd_ca": pem(ca).decode(), "etcd_cert": pem(other).decode()}
    mismatched["etcd_key"] = pem(key).decode()
    response = _register(client, world.workspace, **mismatched)
    assert b"does not belong to the client certificate" in response.content
    assert not Cluster.objects.filter(name="crafted").exists()
    good = {**mismatched, "etcd_cert": pem(cert).decode()}
    assert _register(client, world.workspace, **good).status_code == 302
    assert Cluster.objects.get(name="crafted").etcd_cert == pem(cert).decode().strip()


def _schedule_post(world, client, expression: str):
    return client.post(
        reverse("schedule_create_cluster", args=[world.cluster.name]),
        {
            "prefix": "crafted",
            "preset": "custom",
            "cron": expression,
            "location": world.location.pk,
            "ttl": "168h",
            "cluster_resources": "auto",
        },
    )


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 0 31 2 *", b"never runs"),
        ("0 0 30 2 *", b"never runs"),
        ("* * * * *", b"PALETTE_MIN_SCHEDULE_INTERVAL"),
        ("*/5 * * * *", b"every 5 minutes"),
        (" ".join(["0,1,2,3,4,5,6,7,8,9"] * 5) + " " + "1" * 120, b"at most 100"),
        ("0 0 * * * *", b"five fields"),
        ("0 0 32 * *", b"Not a valid cron"),
        ("0 0 * * 1\u202e", b"printable"),
    ],
)
def test_bad_crons_are_refused_everywhere(world, login, expression, reason):
    client = login(world.users["admin"])
    response = _schedule_post(world, client, expression)
    assert response.status_code == 200 and reason in response.content
    assert not Schedule.objects.filter(prefix="crafted").exists()
    preview = client.get(reverse("schedule_preview"), {"preset": "custom", "cron": expression})
    assert preview.status_code == 200 and reason in preview.content
    before = EtcdPolicy.objects.get(cluster=world.cluster).cron
    client.post(
        reverse("etcd_policy_edit", args=[world.cluster.name]),
        {"enabled": "on", "cron": expression, "keep": "6"},
    )
    assert EtcdPolicy.objects.get(cluster=world.cluster).cron == before


def test_the_minimum_interval_is_a_setting(world, login, settings):
    settings.MIN_SCHEDULE_INTERVAL = timedelta(minutes=5)
    assert cron.problem("*/5 * * * *") is None
    assert "every 1 minute" in cron.problem("* * * * *")


def test_one_bad_stored_schedule_does_not_stop_the_others(world, settings):
    past = timezone.now() - timedelta(minutes=5)
    # Saved before the checks existed: a cron that never fires, and one that is no cron
    # (a column holds at most 100 characters, so one past that cannot be stored at all).
    bad = Schedule.objects.create(
        workspace=world.workspace, cluster=world.cluster, prefix="bad", location=world.location,
        preset=Schedule.Preset.CUSTOM, cron="0 0 31 2 *", next_run_at=past,
    )  # fmt: skip
    Schedule.objects.create(
        workspace=world.workspace, cluster=world.cluster, prefix="long", location=world.location,
        preset=Schedule.Preset.CUSTOM, cron="1" * 99, next_run_at=past,
    )  # fmt: skip
    good = Schedule.objects.filter(pk=world.schedule.pk)
    good.update(next_run_at=past)
    runs = tick()
    assert {run.schedule_id for run in runs} >= {world.schedule.pk}
    assert BackupRun.objects.filter(schedule=world.schedule).count() == 2  # the world's + this
    bad.refresh_from_db()
    assert bad.next_run_at is None  # it never runs again, and says nothing worse


def test_a_bad_stored_etcd_policy_does_not_stop_the_others(world):
    from backups.etcd_policy import tick_etcd

    EtcdPolicy.objects.filter(cluster=world.cluster).update(cron="0 0 31 2 *", next_run_at=None)
    assert tick_etcd() == []
    assert EtcdPolicy.objects.get(cluster=world.cluster).next_run_at is None


def test_the_calendar_survives_a_bad_stored_cron(world, login):
    Schedule.objects.filter(pk=world.schedule.pk).update(preset="custom", cron="0 0 31 2 *")
    assert login(world.users["viewer"]).get(reverse("schedule_calendar")).status_code == 200
    for days in ("99999999999999999999", "-1", "x"):
        url = reverse("schedule_calendar")
        assert login(world.users["viewer"]).get(url, {"days": days}).status_code == 200


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--ttl", "99999999999999h"),
        ("--ttl", "9" * 5000 + "h"),
        ("--ttl", "-5h"),
        ("--selector", "app in (a,"),
        ("--selector", "a=b\nc=d"),
        ("--selector", "x" * 600),
    ],
)
def test_backup_command_refuses_bad_options(world, flag, value):
    with pytest.raises(CommandError, match=flag):
        call_command("backup", world.cluster.name, "--location", world.location.name, flag, value)


@pytest.mark.parametrize("selector", ["app in (a,", "=x", "a==b==c", "x" * 600, "a=b\r\nc"])
def test_forms_refuse_bad_label_selectors(world, login, selector):
    client = login(world.users["admin"])
    response = client.post(
        reverse("backup_create", args=[world.cluster.name]),
        {"prefix": "manual", "location": world.location.pk, "ttl": "720h",
         "cluster_resources": "auto", "label_selector": selector},
    )  # fmt: skip
    assert response.status_code == 200 and b'role="alert"' in response.content
    response = _schedule_post(world, client, "0 2 * * *")
    assert response.status_code == 302  # the same form with a good selector is fine


def test_restore_as_a_user_who_cannot_see_the_backup_is_refused(world):
    from tests import factories

    other = factories.workspace("Elsewhere")
    theirs = factories.cluster(other, "theirs")
    other.grant("admin", user=world.users["outsider"])
    with pytest.raises(CommandError, match="may not see backup"):
        call_command("restore", world.backup.name, "--to", theirs.name, "--as-user", "outsider")


@pytest.mark.parametrize("endpoint", ["http://[::1", "ftp://10.0.0.5", "http://127.0.0.1:99999"])
def test_bad_store_endpoints_are_refused_not_saved(world, login, endpoint):
    from locations.models import BackupLocation

    client = login(world.users["admin"])
    response = client.post(
        reverse("location_create"),
        {"name": "crafted", "workspace": world.workspace.pk, "provider": "minio",
         "bucket": "b", "endpoint_url": endpoint, "access_key": "a", "secret_key": "s",
         "force_path_style": "on", "action": "save", "save_unavailable": "on"},
    )  # fmt: skip
    assert response.status_code == 200 and b'role="alert"' in response.content
    with pytest.raises(CommandError, match="--endpoint"):
        call_command(
            "add_location", "crafted", "--provider", "minio", "--bucket", "b",
            "--endpoint", endpoint, "--access-key", "a", "--secret-key", "s",
        )  # fmt: skip
    assert not BackupLocation.objects.filter(name="crafted").exists()


@pytest.fixture
def raced():
    """Another request inserts the same name between our check and our insert: a
    pre_save receiver writes the twin row (bulk_create sends no signal of its own)."""
    from django.db.models.signals import pre_save

    hooks = []

    def race(model, **twin):
        def receiver(sender, instance, **kwargs):
            if instance.pk is None:
                pre_save.disconnect(receiver, sender=model)
                model.objects.bulk_create([model(**twin)])

        pre_save.connect(receiver, sender=model, weak=False)
        hooks.append((model, receiver))

    yield race
    for model, receiver in hooks:
        pre_save.disconnect(receiver, sender=model)


def test_a_workspace_created_twice_at_once_is_a_form_error(world, login, raced):
    from workspaces.models import Workspace

    raced(Workspace, name="Twins", slug="twins")
    response = login(world.users["admin"]).post(
        reverse("workspace_create"), {"name": "Twins", "description": ""}
    )
    assert response.status_code == 200
    assert b"already exists" in response.content
    # The twin was written inside our (rolled back) transaction here; what matters is
    # that nothing of ours is half-saved: no membership, no audit event.
    assert not Workspace.objects.filter(slug="twins").exists()
    from workspaces.models import AuditEvent, Membership

    assert not AuditEvent.objects.filter(object_repr="Twins").exists()
    assert not Membership.objects.filter(workspace__slug="twins").exists()


def test_a_cluster_registered_twice_at_once_is_a_form_error(world, login, raced):
    raced(Cluster, name="crafted", workspace=world.workspace, kubeconfig=GOOD)
    response = _register(login(world.users["admin"]), world.workspace)
    assert response.status_code == 200
    assert b"already registered" in response.content
    assert not Cluster.objects.filter(name="crafted").exists()  # rolled back with the twin
    assert not EtcdPolicy.objects.filter(cluster__name="crafted").exists()


def test_a_backup_started_twice_at_once_is_refused(world, raced):
    from backups.jobs import JobRefused, start_backup
    from backups.models import Backup

    twin = {"name": "twin", "workspace": world.workspace, "cluster": world.cluster,
            "cluster_name": world.cluster.name, "location": world.location}  # fmt: skip
    raced(Backup, **twin)
    with pytest.raises(JobRefused, match="already exists"):
        start_backup(world.cluster, world.location, name="twin")
    from workspaces.models import AuditEvent

    assert not AuditEvent.objects.filter(action="started backup", object_repr="twin").exists()


def test_two_backups_started_within_one_second_get_distinct_generated_names(world):
    """Generated names carry the second they were made; a second backup in the same
    second is not refused (it was, in CI) but gets a counter."""
    from unittest import mock

    from backups.jobs import start_backup

    frozen = timezone.now()
    with mock.patch("backups.naming.timezone.now", return_value=frozen):
        names = [start_backup(world.cluster, world.location).name for _ in range(3)]
    assert len(set(names)) == 3
    assert names[1] == f"{names[0]}-2" and names[2] == f"{names[0]}-3"
