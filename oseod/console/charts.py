"""Bar charts as SVG, drawn on the server: no script, no external asset.

Pure functions from numbers to markup. Every bar carries a ``<title>`` (the
browser's tooltip, read by screen readers) and the chart as a whole is an
``role="img"`` with an ``aria-label`` summing it up."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import attrs

WIDTH = 560
HEIGHT = 200
MARGIN_LEFT = 44
MARGIN_RIGHT = 8
MARGIN_TOP = 10
MARGIN_BOTTOM = 34


@attrs.frozen
class Series:
    name: str  # "completed"
    colour: str  # a fill colour, e.g. "#1a7f37"


@attrs.frozen
class Bucket:
    start: float  # Unix time of the hour
    values: tuple[int, ...]  # one per series


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... at least ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def _hour(start: float) -> str:
    return time.strftime("%H:00", time.gmtime(start))


def hourly_bars(title: str, series: Sequence[Series], buckets: Sequence[Bucket], *,
                width: int = WIDTH, height: int = HEIGHT) -> str:
    """Grouped bars, one group per hour (oldest left), one bar per series,
    with a y axis (0, half, top) and an hour label every third group."""
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM
    top = nice_ceiling(max((v for b in buckets for v in b.values), default=0))
    totals = [sum(b.values[i] for b in buckets) for i in range(len(series))]
    summary = ", ".join(f"{total} {s.name}" for s, total in zip(series, totals))
    label = f"{title}: {summary} over the last {len(buckets)} hours"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label={quoteattr(label)} '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f"<title>{escape(label)}</title>"]
    base_y = MARGIN_TOP + plot_h
    # The y axis: gridlines and labels at 0, half (when a whole number) and the top.
    for fraction in ((0.0, 0.5, 1.0) if top % 2 == 0 else (0.0, 1.0)):
        y = base_y - fraction * plot_h
        value = top * fraction
        text = f"{value:g}"
        parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{width - MARGIN_RIGHT}" y2="{y:.1f}" '
                     f'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text class="axis" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11" fill="#444">{escape(text)}</text>')
    parts.append(f'<line class="axis" x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{base_y}" '
                 f'stroke="#57606a" stroke-width="1"/>')
    if buckets:
        group_w = plot_w / len(buckets)
        bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
        for index, bucket in enumerate(buckets):
            x0 = MARGIN_LEFT + index * group_w + group_w * 0.1
            hour = _hour(bucket.start)
            for position, (s, value) in enumerate(zip(series, bucket.values)):
                h = plot_h * value / top
                x = x0 + position * bar_w
                tip = f"{hour}–{_hour(bucket.start + 3600)} UTC: {value} {s.name}"
                parts.append(f'<rect class="bar" x="{x:.1f}" y="{base_y - h:.1f}" width="{bar_w:.1f}" '
                             f'height="{h:.1f}" fill="{escape(s.colour)}"><title>{escape(tip)}</title></rect>')
            if index % 3 == 0 or index == len(buckets) - 1:
                parts.append(f'<text class="axis" x="{x0 + group_w * 0.4:.1f}" y="{base_y + 14}" '
                             f'text-anchor="middle" font-size="11" fill="#444">{escape(hour)}</text>')
    parts.append(f'<line class="axis" x1="{MARGIN_LEFT}" y1="{base_y}" x2="{width - MARGIN_RIGHT}" y2="{base_y}" '
                 f'stroke="#57606a" stroke-width="1"/>')
    # The legend, below the hours.
    x = MARGIN_LEFT
    for s in series:
        parts.append(f'<rect x="{x}" y="{height - 12}" width="10" height="10" fill="{escape(s.colour)}"/>')
        parts.append(f'<text x="{x + 14}" y="{height - 3}" font-size="11" fill="#222">{escape(s.name)} (UTC hours)</text>')
        x += 14 + 8 * (len(s.name) + 12)
    parts.append("</svg>")
    return "".join(parts)
