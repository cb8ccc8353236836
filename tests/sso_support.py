"""The local OpenID provider (devenv/oidc.py) wired to the console's settings, for
the SSO tests: one client, users whose groups a test rewrites between logins."""

from __future__ import annotations

import json
import secrets
from contextlib import contextmanager
from pathlib import Path

from devenv.oidc import serve

CLIENT_ID = "backup-console"
GROUP, TEAM = "backup-operators", "sso-operators"


class Directory:
    """The provider's users file."""

    def __init__(self, path: Path, callback: str):
        self.path = path
        self.data = {
            "clients": {
                CLIENT_ID: {"secret": secrets.token_urlsafe(16), "redirect_uris": [callback]}
            },
            "users": {},
        }
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data))

    def add(self, username: str, password: str, groups: list[str], email: str = "") -> str:
        sub = f"sub-{secrets.token_hex(6)}"
        self.data["users"][username] = {"password": password, "sub": sub, "groups": groups,
                                        "email": email or f"{username}@example.org"}  # fmt: skip
        self.save()
        return sub

    def set_groups(self, username: str, groups: list[str]) -> None:
        self.data["users"][username]["groups"] = groups
        self.save()

    @property
    def secret(self) -> str:
        return self.data["clients"][CLIENT_ID]["secret"]


@contextmanager
def provider_for(settings, tmp_path: Path, console_url: str):
    """Start the provider and point the console's OIDC settings at it."""
    directory = Directory(tmp_path / "oidc-users.json", f"{console_url}/oidc/callback/")
    with serve(directory.path) as provider:
        issuer = provider.issuer
        settings.PALETTE_OIDC_ENABLED = True
        settings.PALETTE_OIDC_ISSUER = issuer
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = directory.secret
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{issuer}/authorize"
        settings.OIDC_OP_TOKEN_ENDPOINT = f"{issuer}/token"
        settings.OIDC_OP_USER_ENDPOINT = f"{issuer}/userinfo"
        settings.OIDC_OP_JWKS_ENDPOINT = f"{issuer}/jwks"
        settings.PALETTE_OIDC_TEAMS = {GROUP: TEAM}
        yield provider, directory
