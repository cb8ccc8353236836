"""How django-axes names a login attempt: the typed username, cut to the length a
username can have (axes stores it in a 255-character column; a longer one typed into
the form must be a refused login, not a database error)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

MAX_USERNAME = get_user_model()._meta.get_field("username").max_length or 150


def username(request, credentials: dict | None = None) -> str:
    typed = (credentials or {}).get("username") or request.POST.get("username") or ""
    return str(typed)[:MAX_USERNAME]
