"""Server-rendered SVG line charts: numbers over time, drawn by the template
``components/_chart.html`` (no script, no inline style: the CSP allows neither)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

WIDTH, HEIGHT = 600, 180
LEFT, RIGHT, TOP, BOTTOM = 64, 10, 10, 26  # room for the axis labels


@dataclass
class Dot:
    x: float
    y: float
    at: datetime
    label: str  # the value as people read it
    title: str  # what the point is (e.g. the backup's name)


@dataclass
class Chart:
    title: str
    dots: list[Dot]
    low: str
    high: str
    first: datetime
    last: datetime
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def points(self) -> str:
        return " ".join(f"{d.x},{d.y}" for d in self.dots)

    @property
    def left(self) -> int:
        return LEFT

    @property
    def right(self) -> int:
        return self.width - RIGHT

    @property
    def top(self) -> int:
        return TOP

    @property
    def bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def label_y(self) -> int:
        return self.height - 8

    @property
    def description(self) -> str:
        return (
            f"{self.title}: {len(self.dots)} points from {self.first:%Y-%m-%d} to "
            f"{self.last:%Y-%m-%d}, between {self.low} and {self.high}"
        )


def line_chart(
    title: str,
    rows: list,
    when: Callable[[object], datetime],
    value: Callable[[object], float | None],
    fmt: Callable[[float], str],
    name: Callable[[object], str] = str,
) -> Chart | None:
    """A chart of ``value(row)`` against ``when(row)`` (rows oldest first), or None
    with fewer than two values. The x axis is time, so gaps show as gaps."""
    data = [(when(r), v, r) for r in rows if (v := value(r)) is not None]
    if len(data) < 2:
        return None
    low, high = min(v for _, v, _ in data), max(v for _, v, _ in data)
    first, last = data[0][0], data[-1][0]
    span_t = max((last - first).total_seconds(), 1.0)
    span_v = max(high - low, 1e-9)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    dots = [
        Dot(
            x=round(LEFT + (t - first).total_seconds() / span_t * plot_w, 1),
            y=round(TOP + plot_h - (v - low) / span_v * plot_h, 1)
            if high > low
            else TOP + plot_h / 2,
            at=t,
            label=fmt(v),
            title=name(r),
        )
        for t, v, r in data
    ]
    return Chart(title=title, dots=dots, low=fmt(low), high=fmt(high), first=first, last=last)


def size_text(n: float) -> str:
    """Bytes for people, in powers of 1024 (as Django's filesizeformat)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def seconds_text(s: float) -> str:
    """A duration for people: "4.2 s", "3 min 5 s", "1 h 2 min"."""
    if s < 60:
        return f"{s:.1f} s"
    minutes, seconds = divmod(int(s), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"
