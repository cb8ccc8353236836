"""Bad input to the API is a 4xx with a message, never a 500, and saves nothing:
the pages' validation messages field by field, crafted bodies, generated bodies
(hypothesis) and bad query parameters. A confirmation starts one restore, however
often it is sent."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.models import ApiToken
from backups.models import Backup, Restore, Schedule
from locations.models import BackupLocation

V1 = "/api/v1"


@pytest.fixture
def api(world, client):
    """send(method, path, body) as the workspace Admin (a hostile tenant)."""
    secret = ApiToken.issue(world.users["admin"], "t")[1]

    def send(method: str, path: str, body=None, raw: str | None = None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"data": data, "content_type": "application/json"} if data is not None else {}
        return getattr(client, method)(
            f"{V1}{path}", HTTP_AUTHORIZATION=f"Bearer {secret}", **kwargs
        )

    return send


def errors(response) -> dict:
    assert 400 <= response.status_code < 500, response.content[:300]
    return response.json()


def backup_body(w, **extra) -> dict:
    return {"cluster": w.cluster.name, "location": w.location.name, **extra}


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"name": "Not-A-Name"}, "name", "lower-case letters, digits and dashes"),
        ({"prefix": "UPPER"}, "prefix", "lower-case letters, digits and dashes"),
        ({"label_selector": "app in (("}, "label_selector", "Not a label selector"),
        ({"ttl": "5y"}, "ttl", "Select a valid choice"),
        ({"cluster_resources": "sometimes"}, "cluster_resources", "Select a valid choice"),
        ({"include_namespaces": ["nope"]}, "include_namespaces", "Select a valid choice"),
        ({"location": "nowhere"}, "location", "Select a valid choice"),
        ({"include_disks": "yes"}, "include_disks", "Must be true or false."),
        ({"include_resources": [1, 2]}, "include_resources", "Must be a list of names."),
        ({"colour": "red"}, "colour", "Not a field of this request."),
        ({"cluster": "nowhere"}, "cluster", "No cluster 'nowhere' that you may see."),
        ({"cluster": 7}, "cluster", "This field is required."),
    ],
)
def test_a_bad_backup_gets_the_forms_message(world, api, extra, field, message):
    response = api("post", "/backups/", backup_body(world, **extra))
    assert response.status_code == 400
    assert any(message in text for text in errors(response)[field]), response.json()
    assert Backup.objects.count() == 1  # only the world's


@pytest.mark.parametrize("raw", ["[]", "1", '"x"', "{", "null", '{"cluster": {"a": 1}}'])
def test_a_body_that_is_not_an_object_is_a_400(world, api, raw):
    assert api("post", "/backups/", raw=raw).status_code == 400


def test_a_backup_starts_with_the_page_defaults(world, api):
    response = api("post", "/backups/", backup_body(world, include_namespaces=["shop"]))
    # The cluster is unreachable: its last known namespaces are offered, like the page.
    assert response.status_code == 400
    world.cluster.namespaces = ["shop"]
    world.cluster.save()
    response = api("post", "/backups/", backup_body(world, include_namespaces=["shop"]))
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["phase"] == "New" and made["progress"] == 0 and made["ttl"] == "720h"
    assert made["name"].startswith(f"manual-{world.cluster.name}-")
    assert made["include_namespaces"] == ["shop"]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"namespace_mapping": {"a": ""}}, "namespace_mapping", "="),
        ({"existing_policy": "overwrite"}, "existing_policy", "Select a valid choice"),
        ({"target_cluster": "nowhere"}, "target_cluster", "Select a valid choice"),
        ({"preview": "yes"}, "preview", "Must be true or false."),
        ({"backup": "1"}, "backup", "A backup's id"),
        ({"backup": 999999}, "backup", "No backup 999999 that you may see."),
    ],
)
def test_a_bad_restore_gets_the_forms_message(world, api, extra, field, message):
    body = {"backup": world.backup.pk, "target_cluster": world.cluster.name, **extra}
    response = api("post", "/restores/", body)
    assert response.status_code == 400
    assert any(message in text for text in errors(response)[field]), response.json()
    assert Restore.objects.count() == 1


def test_a_backup_that_did_not_complete_cannot_be_restored(world, api):
    Backup.objects.filter(pk=world.backup.pk).update(status="failed")
    response = api(
        "post", "/restores/", {"backup": world.backup.pk, "target_cluster": world.cluster.name}
    )
    assert response.status_code == 409
    assert "did not complete, so it cannot be restored" in response.json()["detail"]


def test_a_preview_is_confirmed_once(world, api):
    Restore.objects.filter(pk=world.restore.pk).update(is_preview=True, status="completed")
    first = api("post", f"/restores/{world.restore.pk}/confirm/")
    assert first.status_code == 201
    again = api("post", f"/restores/{world.restore.pk}/confirm/")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Restore.objects.filter(is_preview=False).count() == 1
    assert first.json()["preview"] is False and first.json()["phase"] == "New"


def test_the_page_and_the_api_share_the_one_confirmation(world, api, login):
    from django.urls import reverse

    Restore.objects.filter(pk=world.restore.pk).update(is_preview=True, status="completed")
    login(world.users["admin"]).post(reverse("restore_confirm", args=[world.restore.pk]))
    response = api("post", f"/restores/{world.restore.pk}/confirm/")
    assert response.status_code == 200
    assert Restore.objects.filter(is_preview=False).count() == 1


def test_an_unfinished_preview_or_a_restore_cannot_be_confirmed(world, api):
    assert api("post", f"/restores/{world.restore.pk}/confirm/").status_code == 400
    Restore.objects.filter(pk=world.restore.pk).update(is_preview=True)
    response = api("post", f"/restores/{world.restore.pk}/confirm/")
    assert response.status_code == 409 and "finished" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"preset": "custom", "cron": "61 * * * *"}, "cron", ""),
        ({"preset": "hourly"}, "preset", "Select a valid choice"),
        ({"prefix": ""}, "prefix", "This field is required."),
        ({"location": "nowhere"}, "location", "Select a valid choice"),
    ],
)
def test_a_bad_schedule_gets_the_forms_message(world, api, body, field, message):
    before = Schedule.objects.get(pk=world.schedule.pk)
    response = api("patch", f"/schedules/{world.schedule.pk}/", body)
    assert response.status_code == 400
    assert any(message in text for text in errors(response)[field]), response.json()
    after = Schedule.objects.get(pk=world.schedule.pk)
    assert (after.prefix, after.preset, after.cron) == (before.prefix, before.preset, before.cron)


def test_a_schedule_names_a_cluster_or_a_workspace(world, api):
    both = {"cluster": world.cluster.name, "workspace": world.workspace.slug}
    assert "Give either" in errors(api("post", "/schedules/", both))["non_field_errors"][0]
    assert "Give either" in errors(api("post", "/schedules/", {}))["non_field_errors"][0]
    response = api(
        "post", "/schedules/", {"workspace": world.workspace.slug, "location": world.location.name}
    )
    assert response.status_code == 201 and response.json()["cluster"] is None


def test_pause_and_resume_are_idempotent(world, api):
    for _ in range(2):
        assert api("post", f"/schedules/{world.schedule.pk}/pause/").json()["paused"] is True
    assert api("post", f"/schedules/{world.schedule.pk}/resume/").json()["paused"] is False


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [({"keep": 0}, "keep", "Keep at least one copy."), ({"keep": "many"}, "keep", "whole number"),
     ({"cron": "every hour"}, "cron", ""), ({"location": "nowhere"}, "location", "Select a valid choice")],
)  # fmt: skip
def test_a_bad_etcd_policy_gets_the_forms_message(world, api, body, field, message):
    policy = world.cluster.etcd_policy
    response = api("patch", f"/etcd-policies/{policy.pk}/", body)
    assert any(message in text for text in errors(response)[field]), response.json()
    policy.refresh_from_db()
    assert (policy.keep, policy.cron) == (12, "0 */1 * * *")


def test_a_location_never_shows_its_secrets(world, api):
    body = {"name": "store-2", "workspace": world.workspace.slug, "provider": "minio", "bucket": "b",
            "endpoint_url": "http://127.0.0.1:9", "access_key": "AKIAEXAMPLE",
            "secret_key": "very-secret-value", "save_unavailable": True}  # fmt: skip
    response = api("post", "/locations/", body)
    assert response.status_code == 201, response.content
    assert b"very-secret-value" not in response.content
    assert response.json()["status"] == "unavailable" and response.json()["has_credentials"]
    location = BackupLocation.objects.get(name="store-2")
    assert location.credentials["secret_key"] == "very-secret-value"
    listed = api("get", "/locations/").content + api("get", f"/locations/{location.pk}/").content
    assert b"very-secret-value" not in listed
    refused = api(
        "post", "/locations/", {**body, "name": "store-3", "bucket": "c", "save_unavailable": False}
    )
    assert "Not saved: the location does not work." in str(errors(refused)), refused.json()
    assert not BackupLocation.objects.filter(name="store-3").exists()


@pytest.mark.parametrize(
    "query",
    ["?status=bogus", "?page=9999", "?page=-1", "?page_size=abc", "?ordering=nope",
     "?ordering=-created_at,name", "?search=%00", "?workspace=", "?cluster=" + "x" * 5000],
)  # fmt: skip
def test_bad_query_parameters_are_4xx_or_ignored(world, api, query):
    response = api("get", f"/backups/{query}")
    assert response.status_code in (200, 400, 404), response.content[:300]
    assert response.json()


def test_lists_filter_and_order_by_query_parameters(world, api):
    from tests import factories

    factories.backup(world.cluster, world.location, status="failed", size_bytes=5)
    failed = api("get", "/backups/?status=failed").json()
    assert failed["count"] == 1 and failed["results"][0]["phase"] == "Failed"
    assert api("get", f"/backups/?cluster={world.cluster.name}&page_size=1").json()["count"] == 2
    sizes = [b["size_bytes"] for b in api("get", "/backups/?ordering=size_bytes").json()["results"]]
    assert sizes[-1] == 5 or sizes[0] == 5
    assert api("get", "/audit-events/?after=not-a-date").status_code == 400


def test_null_characters_are_refused_on_every_database(world, api):
    # PostgreSQL cannot compare a string holding NUL; SQLite can: both refuse it.
    body = api("post", "/backups/", {"cluster": "a\x00b", "location": world.location.name})
    assert "Null characters" in errors(body)["non_field_errors"][0]
    assert "Null characters" in str(errors(api("get", "/backups/?search=a%00b")))
    assert api("get", "/backups/?cluster=a%00b").status_code == 400
    assert api("get", "/clusters/a%00b/").status_code == 404
    assert api("get", "/workspaces/a%00b/").status_code == 404


BODIES = st.dictionaries(
    st.sampled_from(["cluster", "location", "name", "prefix", "include_namespaces", "ttl",
                     "label_selector", "include_disks", "backup", "target_cluster", "preview",
                     "namespace_mapping", "preset", "cron", "keep", "workspace", "x"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=5),
    max_size=6,
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES)
def test_generated_bodies_never_cause_a_500(world, api, body):
    for method, path in [("post", "/backups/"), ("post", "/restores/"), ("post", "/schedules/"),
                         ("patch", f"/schedules/{world.schedule.pk}/"),
                         ("patch", f"/etcd-policies/{world.cluster.etcd_policy.pk}/"),
                         ("post", "/etcd-snapshots/"), ("patch", f"/locations/{world.location.pk}/")]:  # fmt: skip
        response = api(method, path, body)
        assert response.status_code < 500, (method, path, body, response.content[:300])
