"""What every endpoint shares: the user's permission-filtered queryset, paging,
filters and ordering as query parameters."""

from __future__ import annotations

from rest_framework import viewsets

from workspaces.views.common import require


class Scoped(viewsets.GenericViewSet):
    """A viewset whose rows are ``model.objects.restrict(request.user)``: an object
    outside the user's scope is not found (404), as on the pages.

    ``related`` names the rows a serializer reads, fetched in the same query, so
    a list costs the same number of queries at any size.
    """

    model = None
    related: tuple[str, ...] = ()

    def get_queryset(self):
        rows = self.model.objects.restrict(self.request.user)
        return rows.select_related(*self.related) if self.related else rows

    def require(self, action: str, obj, what: str) -> None:
        """403 for an object the user sees but may not act on (the page's rule)."""
        require(self.request.user, action, obj, what)
