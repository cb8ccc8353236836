"""``Authorization: Bearer <token>`` for the API, and what a token may do.

A token acts as its user: every view fetches through the same ``restrict()``
querysets as the pages, so a token never sees more than its user would. A
read-only token is refused anything but GET, HEAD and OPTIONS.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from .models import ApiToken

KEYWORD = "Bearer"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None  # not ours: the session may still authenticate
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as: Authorization: Bearer <token>"
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        token = ApiToken.find(secret)
        if token is None:
            # One answer for unknown, revoked and expired: a guesser learns nothing.
            raise exceptions.AuthenticationFailed(
                "The token is not valid, or was revoked or expired."
            )
        token.touch()
        return token.user, token

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="api"'


class TokenScope(permissions.BasePermission):
    """Logged in (by token or session), and a read-only token only reads."""

    message = "This token is read-only."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        token = request.auth
        if isinstance(token, ApiToken) and token.read_only:
            return request.method in permissions.SAFE_METHODS
        return True
