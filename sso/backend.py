"""The OIDC backend: mozilla-django-oidc's code flow (with PKCE), plus what it
leaves to the site: the ID token's issuer, audience and expiry are checked, the
userinfo must be about the same subject, users are found by (issuer, subject),
and team membership follows the groups claim at every login."""

from __future__ import annotations

import logging
import re
import time

import requests
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .models import Identity

log = logging.getLogger(__name__)

LEEWAY = 60  # seconds of clock difference allowed on exp and iat


class TeamSyncBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        if not settings.PALETTE_OIDC_ENABLED:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except SuspiciousOperation as exc:  # a refused token: the login page says it failed
            log.warning("single sign-on refused: %s", exc)
            return None
        except (requests.RequestException, ValueError) as exc:  # the provider failed us
            log.warning("single sign-on failed at the provider: %s", exc.__class__.__name__)
            return None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        now = time.time()
        if payload.get("iss", "").rstrip("/") != settings.PALETTE_OIDC_ISSUER:
            raise SuspiciousOperation("The ID token comes from another issuer.")
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token is for another client.")
        if not isinstance(payload.get("exp"), int | float) or payload["exp"] < now - LEEWAY:
            raise SuspiciousOperation("The ID token has expired.")
        if not payload.get("sub"):
            raise SuspiciousOperation("The ID token names no subject.")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        info = super().get_userinfo(access_token, id_token, payload)
        if info.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo answer is about another subject.")
        return {**info, "iss": settings.PALETTE_OIDC_ISSUER}

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        identity = Identity.objects.filter(issuer=claims["iss"], subject=claims["sub"])
        return self.UserModel.objects.filter(sso_identities__in=identity)

    @transaction.atomic
    def create_user(self, claims):
        user = self.UserModel.objects.create_user(self._free_username(claims))
        Identity.objects.create(user=user, issuer=claims["iss"], subject=claims["sub"])
        return self.update_user(user, claims)

    @transaction.atomic
    def update_user(self, user, claims):
        if not user.is_active:
            return None
        user.email = str(claims.get("email", ""))[:254]
        user.first_name = str(claims.get("given_name", ""))[:150]
        user.last_name = str(claims.get("family_name", ""))[:150]
        user.save(update_fields=["email", "first_name", "last_name"])
        groups = claims.get(settings.PALETTE_OIDC_GROUPS_CLAIM) or []
        groups = [str(g) for g in groups] if isinstance(groups, list) else []
        sync_teams(user, groups)
        Identity.objects.filter(user=user, issuer=claims["iss"], subject=claims["sub"]).update(
            groups=groups[:200], last_login_at=timezone.now()
        )
        return user

    def _free_username(self, claims) -> str:
        wanted = claims.get("preferred_username") or claims.get("email", "").split("@")[0]
        base = re.sub(r"[^\w.@+-]", "", str(wanted))[:120] or "sso-user"
        name, n = base, 1
        while self.UserModel.objects.filter(username=name).exists():
            n += 1
            name = f"{base}-{n}"
        return name


def sync_teams(user, groups: list[str]) -> None:
    """Join the teams mapped from ``groups``; leave the mapped teams of the other
    groups. Teams no mapping names are left as they are (local grants stay)."""
    mapping = settings.PALETTE_OIDC_TEAMS
    wanted = {mapping[g] for g in groups if g in mapping}
    managed = set(mapping.values())
    for name in sorted(managed):
        team, _ = Group.objects.get_or_create(name=name)
        if name in wanted:
            user.groups.add(team)
        else:
            user.groups.remove(team)
