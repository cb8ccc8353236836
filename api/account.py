"""/account/tokens/: a user's own API tokens (make one, see them, revoke one).

A token's secret is shown once, on the page that answers its creation, with
``Cache-Control: no-store``; only its digest is kept. Each user sees and revokes
only their own tokens (anyone else's answers 404).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from workspaces import audit

from .models import ApiToken, parse_lifetime

LIFETIMES = [
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("365d", "1 year"),
    ("", "Never expires"),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What it is for, e.g. the CI job that starts backups."
    )
    expires_in = forms.ChoiceField(
        label="Expires", choices=LIFETIMES, initial="90d", required=False
    )
    read_only = forms.BooleanField(
        required=False,
        label="Read-only",
        help_text="It may read everything you may read, and change nothing.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the token a name.")
        return name

    def lifetime(self):
        choice = self.cleaned_data.get("expires_in")
        return parse_lifetime(choice) if choice else None


def _page(request: HttpRequest, form: TokenForm, secret: str = "", token=None) -> HttpResponse:
    tokens = ApiToken.objects.filter(user=request.user)
    response = render(
        request,
        "api/tokens.html",
        {"form": form, "tokens": tokens, "secret": secret, "new_token": token},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request, TokenForm())


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    token, secret = ApiToken.issue(
        request.user,
        form.cleaned_data["name"],
        lifetime=form.lifetime(),
        read_only=form.cleaned_data["read_only"],
    )
    audit.record(request.user, "created", token, read_only=token.read_only)
    return _page(request, TokenForm(), secret=secret, token=token)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if token.revoked_at is None:
        token.revoke()
        audit.record(request.user, "revoked", token)
        messages.success(request, f"Token {token.name} revoked. Scripts using it now get 401.")
    return redirect("token_list")
