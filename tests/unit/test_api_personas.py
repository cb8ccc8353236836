"""Every API route and method with every persona (tests/conftest.py), each with a
token of their own: allowed actions succeed, others are refused (403), objects
outside one's scope are 404, a request without a token is 401. A route added to
the API without a row here fails ``test_every_route_and_method_has_a_row``.

Objects named in a request body (the cluster to back up, the backup to restore)
that the persona may not see are a 400 with the form's message, never a 404 of
the URL and never a leak."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.urls import URLPattern, resolve

from api.models import ApiToken
from api.urls import v1
from backups.models import EtcdSnapshot
from tests.unit.test_views_personas import PEOPLE, as_finished_preview
from workspaces import audit

OK, CREATED, NO_CONTENT, BAD, FORBIDDEN, NOT_FOUND, BAD_GATEWAY = 200, 201, 204, 400, 403, 404, 502
V1 = "/api/v1"


@dataclass
class Case:
    name: str
    method: str
    url: Callable
    expect: dict  # persona -> status
    body: Callable = field(default=lambda w: None)


def everyone(status, **others) -> dict:
    return dict.fromkeys(PEOPLE, status) | others


def seers(status, **others) -> dict:
    return everyone(status, outsider=NOT_FOUND) | others


def operators(status, **others) -> dict:
    return everyone(status, viewer=FORBIDDEN, outsider=NOT_FOUND) | others


def admin_only(status, **others) -> dict:
    return operators(FORBIDDEN, admin=status, team_admin=status) | others


# The single-cluster grantee has no grant on the workspace's location.
NO_LOCATION = {"cluster_grantee": NOT_FOUND}
# Nothing is stored in the test location: a download or a read of the contents is
# the store's error (502); Viewers and the grantee may not download at all.
DOWNLOADERS = operators(BAD_GATEWAY, cluster_grantee=FORBIDDEN)
# Bodies naming the world's cluster or backup: the outsider cannot see them (400).
BODY_OUTSIDER = {"outsider": BAD}


def schedule_body(w) -> dict:
    return {"cluster": w.cluster.name, "prefix": "daily", "preset": "custom",
            "cron": "0 2 * * *", "location": w.location.name, "ttl": "168h"}  # fmt: skip


CASES = [
    Case("workspace-list", "get", lambda w: f"{V1}/workspaces/", everyone(OK)),
    Case("workspace-detail", "get", lambda w: f"{V1}/workspaces/{w.workspace.slug}/", seers(OK)),
    Case("cluster-list", "get", lambda w: f"{V1}/clusters/", everyone(OK)),
    Case("cluster-detail", "get", lambda w: f"{V1}/clusters/{w.cluster.name}/", seers(OK)),
    Case("cluster-health", "post", lambda w: f"{V1}/clusters/{w.cluster.name}/health/", seers(OK)),
    Case("location-list", "get", lambda w: f"{V1}/locations/", everyone(OK)),
    Case(
        "location-detail",
        "get",
        lambda w: f"{V1}/locations/{w.location.pk}/",
        seers(OK, **NO_LOCATION),
    ),
    Case(
        "location-list",
        "post",
        lambda w: f"{V1}/locations/",
        # Workspace Admins add locations; this one's store refuses connections, and
        # it is saved as asked, marked Unavailable.
        admin_only(CREATED, cluster_grantee=FORBIDDEN, outsider=FORBIDDEN),
        body=lambda w: {
            "name": "api-minio",
            "workspace": w.workspace.slug,
            "provider": "minio",
            "bucket": "b",
            "endpoint_url": "http://127.0.0.1:9",
            "access_key": "k",
            "secret_key": "s3cr3t-value",
            "save_unavailable": True,
        },  # fmt: skip
    ),
    Case(
        "location-detail",
        "patch",
        lambda w: f"{V1}/locations/{minio_location(w)}/",
        admin_only(OK, **NO_LOCATION),
        # The secret is kept (not given); the store still refuses connections.
        body=lambda w: {"prefix": "api-test", "save_unavailable": True},
    ),
    Case("backup-list", "get", lambda w: f"{V1}/backups/", everyone(OK)),
    Case("backup-detail", "get", lambda w: f"{V1}/backups/{w.backup.pk}/", seers(OK)),
    Case(
        "backup-list",
        "post",
        lambda w: f"{V1}/backups/",
        # The grantee may back up the cluster but sees no location to back up into.
        operators(CREATED, cluster_grantee=BAD, **BODY_OUTSIDER),
        body=lambda w: {"cluster": w.cluster.name, "location": w.location.name},
    ),
    Case(
        "backup-detail", "delete", lambda w: f"{V1}/backups/{stored(w)}/", admin_only(NO_CONTENT)
    ),  # fmt: skip
    Case(
        "backup-contents",
        "get",
        lambda w: f"{V1}/backups/{w.backup.pk}/contents/",
        seers(BAD_GATEWAY),
    ),
    Case("backup-download", "get", lambda w: f"{V1}/backups/{w.backup.pk}/download/", DOWNLOADERS),
    Case("restore-list", "get", lambda w: f"{V1}/restores/", everyone(OK)),
    Case("restore-detail", "get", lambda w: f"{V1}/restores/{w.restore.pk}/", seers(OK)),
    Case(
        "restore-list",
        "post",
        lambda w: f"{V1}/restores/",
        operators(CREATED, **BODY_OUTSIDER),
        body=lambda w: {"backup": w.backup.pk, "target_cluster": w.cluster.name, "preview": True},
    ),
    Case(
        "restore-confirm",
        "post",
        lambda w: as_finished_preview(w) or f"{V1}/restores/{w.restore.pk}/confirm/",
        operators(CREATED),
    ),
    Case("restore-items", "get", lambda w: f"{V1}/restores/{w.restore.pk}/items/", seers(OK)),
    Case("schedule-list", "get", lambda w: f"{V1}/schedules/", everyone(OK)),
    Case("schedule-detail", "get", lambda w: f"{V1}/schedules/{w.schedule.pk}/", seers(OK)),
    Case(
        "schedule-list",
        "post",
        lambda w: f"{V1}/schedules/",
        admin_only(CREATED, **BODY_OUTSIDER),
        body=schedule_body,
    ),
    Case(
        "schedule-detail",
        "put",
        lambda w: f"{V1}/schedules/{w.schedule.pk}/",
        admin_only(OK),
        body=lambda w: {k: v for k, v in schedule_body(w).items() if k != "cluster"},
    ),
    Case(
        "schedule-detail",
        "patch",
        lambda w: f"{V1}/schedules/{w.schedule.pk}/",
        admin_only(OK),
        body=lambda w: {"ttl": "24h"},
    ),
    Case(
        "schedule-detail",
        "delete",
        lambda w: f"{V1}/schedules/{w.schedule.pk}/",
        admin_only(NO_CONTENT),
    ),  # fmt: skip
    Case(
        "schedule-pause", "post", lambda w: f"{V1}/schedules/{w.schedule.pk}/pause/", admin_only(OK)
    ),  # fmt: skip
    Case(
        "schedule-resume",
        "post",
        lambda w: f"{V1}/schedules/{w.schedule.pk}/resume/",
        admin_only(OK),
    ),  # fmt: skip
    Case(
        "schedule-run", "post", lambda w: f"{V1}/schedules/{w.schedule.pk}/run/", operators(CREATED)
    ),  # fmt: skip
    Case("etcd-snapshot-list", "get", lambda w: f"{V1}/etcd-snapshots/", everyone(OK)),
    Case(
        "etcd-snapshot-detail", "get", lambda w: f"{V1}/etcd-snapshots/{w.snapshot.pk}/", seers(OK)
    ),
    Case(
        "etcd-snapshot-list",
        "post",
        lambda w: f"{V1}/etcd-snapshots/",
        operators(CREATED, **BODY_OUTSIDER),
        body=lambda w: finished_snapshot(w) or {"cluster": w.cluster.name},
    ),
    Case(
        "etcd-snapshot-download",
        "get",
        lambda w: f"{V1}/etcd-snapshots/{w.snapshot.pk}/download/",
        DOWNLOADERS,
    ),
    Case("etcd-policy-list", "get", lambda w: f"{V1}/etcd-policies/", everyone(OK)),
    Case("etcd-policy-detail", "get", lambda w: f"{V1}/etcd-policies/{policy(w)}/", seers(OK)),
    Case(
        "etcd-policy-detail",
        "patch",
        lambda w: f"{V1}/etcd-policies/{policy(w)}/",
        admin_only(OK),
        body=lambda w: {"cron": "0 */2 * * *", "keep": 6},
    ),
    Case("audit-event-list", "get", lambda w: f"{V1}/audit-events/", everyone(OK)),
    Case("audit-event-detail", "get", lambda w: f"{V1}/audit-events/{event(w)}/", seers(OK)),
]


def minio_location(w) -> int:
    """A MinIO location of the workspace (only a superuser may change a local one)."""
    from tests import factories

    return factories.location(
        w.workspace, "payments-minio", provider="minio", bucket="b",
        endpoint_url="http://127.0.0.1:9", credentials={"access_key": "k", "secret_key": "s"},
    ).pk  # fmt: skip


def stored(w) -> int:
    """The world's backup, its location's directory there (deleting it then works)."""
    Path(w.location.path).mkdir(parents=True, exist_ok=True)
    return w.backup.pk


def finished_snapshot(w) -> None:
    """The world's snapshot done (a cluster takes one snapshot at a time)."""
    EtcdSnapshot.objects.filter(pk=w.snapshot.pk).update(status="completed")


def policy(w) -> int:
    return w.cluster.etcd_policy.pk


def event(w) -> int:
    return audit.record(w.users["admin"], "backed up", w.backup).pk


def call(client, case: Case, world, token: str | None, prepared=None):
    """Send the case's request (``prepared``: its url and body, made once)."""
    url, body = prepared or (case.url(world), case.body(world))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    kwargs = {"content_type": "application/json", "data": json.dumps(body)} if body else {}
    return getattr(client, case.method)(url, **kwargs, **headers)


@pytest.fixture
def tokens(world) -> dict:
    return {name: ApiToken.issue(user, "test")[1] for name, user in world.users.items() if user}


@pytest.mark.parametrize("persona", PEOPLE)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method}-{c.name}")
def test_it_answers_each_persona_as_its_role_allows(world, tokens, client, case, persona):
    response = call(client, case, world, tokens[persona])
    assert response.status_code == case.expect[persona], response.content[:500]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method}-{c.name}")
def test_it_answers_401_without_a_token(world, client, case):
    response = call(client, case, world, None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method}-{c.name}")
def test_a_revoked_or_expired_token_is_401(world, client, case):
    from datetime import timedelta

    from django.utils import timezone

    revoked, revoked_secret = ApiToken.issue(world.users["admin"], "old")
    revoked.revoke()
    expired, expired_secret = ApiToken.issue(world.users["admin"], "short")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    prepared = case.url(world), case.body(world)
    for secret in (revoked_secret, expired_secret):
        response = call(client, case, world, secret, prepared)
        assert response.status_code == 401, response.content[:300]
        assert b"not valid, or was revoked or expired" in response.content


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method}-{c.name}")
def test_a_read_only_token_reads_and_changes_nothing(world, client, case):
    _, secret = ApiToken.issue(world.users["admin"], "ro", read_only=True)
    response = call(client, case, world, secret)
    if case.method == "get":
        assert response.status_code == case.expect["admin"]
    else:
        assert response.status_code == FORBIDDEN
        assert response.json() == {"detail": "This token is read-only."}


def api_routes() -> set[tuple[str, str]]:
    """(url name, method) of every route of /api/v1/."""
    return {
        (pattern.name, method)
        for pattern in v1
        if isinstance(pattern, URLPattern)
        for method in pattern.callback.actions
        if method not in ("head", "options")
    }


def test_every_route_and_method_has_a_row(world):
    covered = {(resolve(case.url(world)).url_name, case.method) for case in CASES}
    assert api_routes() == covered
    for case in CASES:
        assert set(case.expect) == set(PEOPLE), case.name
