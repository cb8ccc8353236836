"""Guessing passwords: after the failure limit the username is locked, even for the
right password, until the cool-off ends or staff unlock it in the admin."""

from __future__ import annotations

from django.urls import reverse

from tests import factories

WRONG_GUESSES = 30


def _sign_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_thirty_wrong_passwords_lock_the_account_with_a_clear_message(client, db):
    factories.user("victim")
    for n in range(WRONG_GUESSES):
        _sign_in(client, "victim", f"guess-{n}")
    response = _sign_in(client, "victim", factories.PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many wrong passwords" in page and "victim" in page
    assert "_auth_user_id" not in client.session
    # Another user is not affected by the attack on this one.
    factories.user("bystander")
    assert _sign_in(client, "bystander", factories.PASSWORD).status_code == 302


def test_a_few_mistakes_do_not_lock(client, db):
    factories.user("clumsy")
    for n in range(3):
        assert _sign_in(client, "clumsy", f"typo-{n}").status_code == 200
    assert _sign_in(client, "clumsy", factories.PASSWORD).status_code == 302


def test_staff_unlock_the_account_in_the_admin(client, db):
    from axes.models import AccessAttempt

    factories.user("victim")
    for n in range(WRONG_GUESSES):
        _sign_in(client, "victim", f"guess-{n}")
    assert _sign_in(client, "victim", factories.PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="victim")

    staff = factories.user("support", is_staff=True, is_superuser=True)
    client.force_login(staff)
    changelist = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert changelist.status_code == 200 and b"victim" in changelist.content
    client.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})
    client.logout()
    assert _sign_in(client, "victim", factories.PASSWORD).status_code == 302
