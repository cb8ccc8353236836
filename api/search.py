"""``?search=``: DRF's search, refusing what the database cannot compare."""

from __future__ import annotations

from rest_framework import exceptions, filters


class Search(filters.SearchFilter):
    def get_search_terms(self, request) -> list[str]:
        terms = super().get_search_terms(request)
        if any("\x00" in term for term in terms):
            # PostgreSQL refuses a NUL in a query; SQLite would match nothing.
            raise exceptions.ValidationError({"search": ["Null characters are not allowed."]})
        return terms
