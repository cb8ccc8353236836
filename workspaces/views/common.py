"""Small helpers every view uses: fetch-with-permission, fragment choice, paging."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import Count, Model, Q, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from ..access import can
from ..models import Cluster, Workspace
from ..roles import Action

PAGE_SIZE = 50


def require(user, action: str, obj, what: str = "do that") -> None:
    """403 for an object the user can see but may not act on (the 404 case is
    handled earlier, by fetching through a permission-filtered queryset)."""
    if not can(user, action, obj):
        raise PermissionDenied(f"Your role does not allow you to {what}.")


def fetch(request: HttpRequest, queryset, action: str = Action.VIEW, what: str = "do that",
          **lookup) -> Model:  # fmt: skip
    """The object ``lookup`` finds among those the user may see, else 404 (never 403:
    that would tell an outsider it exists); then 403 unless they may do ``action``."""
    obj = get_object_or_404(queryset.restrict(request.user), **lookup)
    if action != Action.VIEW:
        require(request.user, action, obj, what)
    return obj


def visible_cluster(
    request: HttpRequest, name: str, action: str = Action.VIEW, what: str = "do that"
) -> Cluster:
    """The cluster a URL names, as ``fetch`` finds it (with its workspace)."""
    return fetch(request, Cluster.objects.select_related("workspace"), action, what, name=name)


def visible_workspace(
    request: HttpRequest, slug: str, action: str = Action.VIEW, what: str = "do that"
) -> Workspace:
    """The workspace a URL names, as ``fetch`` finds it (a single-cluster grantee sees it)."""
    return fetch(request, Workspace.objects, action, what, slug=slug)


def with_cluster_counts(user, workspaces: QuerySet) -> QuerySet:
    """Each workspace with ``cluster_count``: the clusters of it the user may see."""
    visible = Q(clusters__in=Cluster.objects.restrict(user))
    return workspaces.annotate(cluster_count=Count("clusters", filter=visible))


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
