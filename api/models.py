"""Personal API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# Every token starts with this, so a leaked one is easy to recognise (and to grep for).
TOKEN_PREFIX = "pbc_"  # noqa: S105 (a marker, not a secret)
# How much of a token the list shows, to tell tokens apart without revealing them.
SHOWN_CHARS = 8
# last_used_at moves at most this often: a busy script must not write on every call.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=3650)

_LIFETIME = re.compile(r"^\s*(\d{1,6})\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_lifetime(text: str) -> timedelta:
    """ "30d", "12h", "90m" as a timedelta; ValueError with a sentence otherwise."""
    match = _LIFETIME.match(text or "")
    if not match:
        raise ValueError(
            f"{text!r} is not a lifetime: use a number and d, h or m (e.g. 30d, 12h, 90m)."
        )
    lifetime = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if not timedelta(minutes=1) <= lifetime <= MAX_LIFETIME:
        raise ValueError("A token lives between one minute and ten years.")
    return lifetime


def digest(secret: str) -> str:
    """The stored form of a token. A token is 256 random bits, so one round of
    SHA-256 is enough: there is no dictionary to try, and lookups stay one index hit."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        """Tokens that still open the API: not revoked, not expired, of an active user."""
        now = now or timezone.now()
        return self.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now),
            revoked_at__isnull=True,
            user__is_active=True,
        )


class ApiToken(models.Model):
    """A personal token: it acts with its user's permissions, or only reads.

    The secret is shown once, when it is made; only its digest is stored.
    Revoking keeps the row (the list shows when and which), so the token's
    name and last use stay readable after the fact.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    shown = models.CharField(max_length=20, help_text="The token's first characters")
    digest = models.CharField(max_length=64, unique=True)
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.shown}…) of {self.user}"

    @classmethod
    def issue(
        cls, user, name: str, *, lifetime: timedelta | None = None, read_only: bool = False
    ) -> tuple[ApiToken, str]:
        """Make a token; returns the row and the secret (the only time it exists)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name.strip()[:100] or "token",
            shown=secret[: len(TOKEN_PREFIX) + SHOWN_CHARS],
            digest=digest(secret),
            read_only=read_only,
            expires_at=timezone.now() + lifetime if lifetime else None,
        )
        return token, secret

    @classmethod
    def find(cls, secret: str) -> ApiToken | None:
        """The usable token with this secret, or None (unknown, revoked, expired)."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        return cls.objects.usable().select_related("user").filter(digest=digest(secret)).first()

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def touch(self) -> None:
        """Record a use, at most once a minute (one conditional UPDATE)."""
        now = timezone.now()
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
        type(self).objects.filter(stale, pk=self.pk).update(last_used_at=now)

    def revoke(self) -> None:
        type(self).objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.refresh_from_db(fields=["revoked_at"])
