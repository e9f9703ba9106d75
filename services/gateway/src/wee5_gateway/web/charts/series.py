"""Daily series as inline SVG: a bar chart of one value per day, or a line chart of several
values per day (one line each, with a legend). Labels and titles are escaped here; the result
is `Markup`, safe to put in a template as it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

# Small enough that its text stays legible when a phone shows the chart 340 px wide.
WIDTH = 480
HEIGHT = 220
# Room for the y-axis labels on the left and the day labels below.
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 44, 26
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
# At most this many day labels under the axis (every n-th day beyond that).
MAX_DAY_LABELS = 7
# About half the width of "Nov 30" in the chart's font.
DAY_LABEL_HALF_WIDTH = 20
# Dots on the lines only while there is room for them.
MAX_DOTTED_DAYS = 31
# Series colours, as CSS classes (app.css: `.series-0` …), so dark mode may change them.
SERIES_CLASSES = 6


def nice_ceiling(value: int) -> int:
    """The top of the y axis: the smallest 2, 4, 6 or 8 × 10ⁿ (or 1) at least `value`, so the
    middle line is a whole number too."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _day_label(day: date) -> str:
    return day.strftime("%b %-d")


def _frame(title: str, top: int, days: Sequence[date], kind: str, body: list[str]) -> Markup:
    label_every = max(1, -(-len(days) // MAX_DAY_LABELS))
    slot = PLOT_W / max(len(days), 1)
    axis = [
        f'<line class="axis" x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + PLOT_H}"/>',
    ]
    for fraction in (0, 0.5, 1) if top > 1 else (0, 1):
        y = TOP + PLOT_H - fraction * PLOT_H
        value = round(top * fraction)
        axis.append(
            f'<line class="grid-line" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="y-label" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{value:,}</text>"
        )
    for index, day in enumerate(days):
        # Counted back from the last day, which is always labelled.
        if (len(days) - 1 - index) % label_every:
            continue
        x = LEFT + slot * (index + 0.5)
        anchor = "middle"
        if x + DAY_LABEL_HALF_WIDTH > WIDTH:  # keep the last label inside the chart
            x, anchor = WIDTH - 1, "end"
        axis.append(
            f'<text class="x-label" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
            f"{escape(_day_label(day))}</text>"
        )
    safe_title = escape(title)
    svg = (
        f'<svg class="chart {kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{safe_title}" data-days="{len(days)}">'
        f"<title>{safe_title}</title>"
        f'<text class="chart-title" x="0" y="16">{safe_title}</text>'
        + "".join(axis)
        + "".join(body)
        + "</svg>"
    )
    return Markup(svg)


def bar_chart(title: str, points: Sequence[tuple[date, int]]) -> Markup:
    """One bar per day (`<rect class="bar" data-day=… data-value=…>`), oldest on the left."""
    days = [day for day, _ in points]
    top = nice_ceiling(max((value for _, value in points), default=0))
    slot = PLOT_W / max(len(points), 1)
    bar_w = max(slot * 0.7, 1.0)
    bars = []
    for index, (day, value) in enumerate(points):
        height = PLOT_H * value / top
        x = LEFT + slot * index + (slot - bar_w) / 2
        y = TOP + PLOT_H - height
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{height:.1f}" data-day="{day.isoformat()}" data-value="{value}">'
            f"<title>{escape(_day_label(day))}: {value:,}</title></rect>"
        )
    return _frame(title, top, days, "bars", bars)


def line_chart(title: str, days: Sequence[date], series: Mapping[str, Sequence[int]]) -> Markup:
    """One line per named series over the days (each series has a value per day), with a
    legend; a single day is drawn as dots."""
    top = nice_ceiling(max((max(values, default=0) for values in series.values()), default=0))
    slot = PLOT_W / max(len(days), 1)
    body = []
    for number, (name, values) in enumerate(series.items()):
        css = f"series-{number % SERIES_CLASSES}"
        coords = [
            (LEFT + slot * (index + 0.5), TOP + PLOT_H - PLOT_H * value / top)
            for index, value in enumerate(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline class="line {css}" points="{path}" data-series="{escape(name)}"/>')
        if len(days) <= MAX_DOTTED_DAYS:
            body.extend(
                f'<circle class="dot {css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>' for x, y in coords
            )
        legend_x = LEFT + 100 * number
        body.append(
            f'<rect class="key {css}" x="{legend_x}" y="24" width="9" height="9" rx="2"/>'
            f'<text class="legend" x="{legend_x + 13}" y="32">{escape(name)}</text>'
        )
    return _frame(title, top, days, "lines", body)
