"""The two OIDC endpoints, answering 404 while single sign-on is off."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView


def _when_enabled(view):
    def wrapped(request, *args, **kwargs):
        if not settings.PALETTE_OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        return view(request, *args, **kwargs)

    return wrapped


start = _when_enabled(OIDCAuthenticationRequestView.as_view())
callback = _when_enabled(OIDCAuthenticationCallbackView.as_view())
