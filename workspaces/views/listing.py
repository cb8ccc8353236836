"""Search, filters and sort for list pages, with the whole state in the URL.

A page declares what its rows can be searched on, filtered by and sorted by (a
``Listing``); ``Listing.apply`` turns the query string into one filtered, ordered
queryset (so the page still costs the same few queries at any size) and gives the
template what it needs to show the controls and keep the state across pages.
Unknown or malformed values are ignored and said so, never a 500."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone


@dataclass(frozen=True)
class Filter:
    """One control: a choice (``choices``) or exact text matched case-insensitively."""

    name: str  # the query-string key
    label: str
    lookup: str  # the field it filters, e.g. "cluster_name"
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Listing:
    search: tuple[str, ...]  # fields the "q" box searches (icontains, any of them)
    sorts: dict[str, tuple[str, str]]  # key -> (label, order_by expression)
    default_sort: str
    filters: tuple[Filter, ...] = ()
    dated: str = ""  # the date field "from"/"to" filter on; "" for none
    search_label: str = "Search"

    def apply(self, request: HttpRequest, rows: QuerySet) -> tuple[QuerySet, dict]:
        get = request.GET
        state: dict[str, str] = {}
        problems: list[str] = []
        if (q := get.get("q", "").strip()[:200]) and self.search:
            match = Q()
            for name in self.search:
                match |= Q(**{f"{name}__icontains": q})
            rows = rows.filter(match)
            state["q"] = q
        controls = []
        for f in self.filters:
            value = get.get(f.name, "").strip()[:200]
            allowed = dict(f.choices)
            if value and f.choices and value not in allowed:
                problems.append(f"{f.label}: {value} is not one of the choices; it was ignored.")
                value = ""
            if value:
                lookup = f.lookup if f.choices else f"{f.lookup}__iexact"
                rows = rows.filter(**{lookup: value})
                state[f.name] = value
            controls.append({"filter": f, "value": value})
        if self.dated:
            for key, label in (("from", "From"), ("to", "To")):
                text = get.get(key, "").strip()
                if not text:
                    continue
                try:
                    day = date.fromisoformat(text)
                except ValueError:
                    problems.append(
                        f"{label}: {text[:40]} is not a date (YYYY-MM-DD); it was ignored."
                    )
                    continue
                if key == "from":
                    rows = rows.filter(**{f"{self.dated}__gte": _start_of(day)})
                else:
                    rows = rows.filter(**{f"{self.dated}__lt": _start_of(day + timedelta(days=1))})
                state[key] = day.isoformat()
        sort = get.get("sort", "")
        if sort not in self.sorts:
            if sort:
                problems.append(f"Sort: {sort[:40]} is not a known order; the default is used.")
            sort = self.default_sort
        elif sort != self.default_sort:
            state["sort"] = sort
        rows = rows.order_by(*_order(self.sorts[sort][1]), "-pk")
        context = {
            "listing": self,
            "controls": controls,
            "state": state,
            "sort": sort,
            "filtered": any(k != "sort" for k in state),
            "query": urlencode(state),  # the state without the page, for page links
            "problems": problems,
        }
        return rows, context


def _order(expression: str) -> list:
    """ "-created_at,name" as order_by terms, empty values last on every database
    (PostgreSQL puts NULL first in a descending order, SQLite last)."""
    terms = []
    for name in expression.split(","):
        column = F(name.lstrip("-"))
        terms.append(
            column.desc(nulls_last=True) if name.startswith("-") else column.asc(nulls_last=True)
        )
    return terms


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class Bulk:
    """Rows ticked on a list page, for an action that asks before it acts."""

    ids: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, request: HttpRequest) -> Bulk:
        ids = []
        for value in request.POST.getlist("ids")[:500]:
            if value.isdigit():
                ids.append(int(value))
        return cls(sorted(set(ids)))
