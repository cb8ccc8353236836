"""Filters the pages share: dates with their time zone, ages and durations for people."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from backups.charts import seconds_text
from backups.engine.words import duration_words, phase_words

register = template.Library()


@register.filter
def when(value) -> str:
    """A <time> element: "2026-12-01 10:40 UTC", machine-readable in its datetime."""
    if not value:
        return "—"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}">{}</time>', local.isoformat(), date_format(local, "Y-m-d H:i T")
    )


@register.filter
def age(value: timedelta | None) -> str:
    """How old, in the largest units that matter: "3 h 5 min", "2 d 4 h"."""
    if value is None:
        return "never"
    seconds = max(value.total_seconds(), 0)
    if seconds >= 86400:
        days, rest = divmod(int(seconds), 86400)
        return f"{days} d {rest // 3600} h" if rest >= 3600 else f"{days} d"
    text = seconds_text(seconds)
    return text.removesuffix(" 0 min").removesuffix(" 0 s")


@register.filter
def ticks(value) -> str:
    """Text written with Markdown's backticks, as HTML: `cmd` becomes <code>cmd</code>.
    Everything else is escaped; an unpaired backtick stays a backtick."""
    parts = str(value or "").split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: the last one is literal
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    html = [
        escape(part) if i % 2 == 0 else format_html("<code>{}</code>", part)
        for i, part in enumerate(parts)
    ]
    return mark_safe("".join(html))  # noqa: S308 - every part is escaped above


@register.filter
def phase(value: str) -> str:
    """A job's phase for people: Velero's names ("PartiallyFailed") as words."""
    return phase_words(value or "")


@register.filter
def span(value: timedelta | None) -> str:
    """A setting's length in words: "30 days", not "30 days, 0:00:00"."""
    return "—" if value is None else duration_words(value.total_seconds())
