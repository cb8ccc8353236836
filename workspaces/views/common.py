"""Small helpers every view uses: fetch-with-permission, fragment choice, paging."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpRequest

from ..access import can

PAGE_SIZE = 50


def require(user, action: str, obj, what: str = "do that") -> None:
    """403 for an object the user can see but may not act on (the 404 case is
    handled earlier, by fetching through a permission-filtered queryset)."""
    if not can(user, action, obj):
        raise PermissionDenied(f"Your role does not allow you to {what}.")


def add_errors(form, exc: ValidationError) -> None:
    """Show a model's ValidationError on the form: at its fields when the form has them."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)


def page_of(request: HttpRequest, queryset, size: int = PAGE_SIZE) -> Page:
    return Paginator(queryset, size).get_page(request.GET.get("page"))


def fragment(request: HttpRequest, template: str, name: str) -> str:
    """The whole page for a normal request, only the named partial for HTMX."""
    return f"{template}#{name}" if request.htmx else template
