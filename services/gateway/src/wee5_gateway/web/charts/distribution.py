"""A numeric benchmark field's distribution as inline SVG: the p10–p90 band (the middle 80 %
of answers), the p25–p75 band inside it, the median as a line, and where the reader's own
answer stands ("you are here", with its percentile). Only figures that passed the privacy
floor reach here; labels are escaped before they join the markup."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

# Narrow enough that its 11px labels stay readable on a phone when the chart fills the card.
WIDTH, HEIGHT = 380, 118
LEFT, RIGHT = 24.0, WIDTH - 24.0
# Closer than this to a p10/p90 label, an axis end's label would overlap it and is left out.
CROWDED = 44
BAND_TOP, BAND_BOTTOM = 30, 62
# The part of the axis left free on each side of the p10–p90 band when min/max are unknown.
MARGIN = 0.25


@dataclass(frozen=True)
class Distribution:
    label: str
    unit: str | None
    p10: float
    p25: float
    median: float
    p75: float
    p90: float
    minimum: float | None = None
    maximum: float | None = None
    # The reader's own answer and its percentile (0–100), when it counts here.
    you: float | None = None
    you_percentile: float | None = None


def number(value: float) -> str:
    """Short and readable: 1,250 · 85k · 1.2M · 4.5."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if magnitude >= 10_000:
        return f"{value / 1000:.0f}k"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def ordinal(percentile: float) -> str:
    n = round(percentile)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _domain(d: Distribution) -> tuple[float, float]:
    spread = (d.p90 - d.p10) or abs(d.median) or 1.0
    low = d.minimum if d.minimum is not None else d.p10 - spread * MARGIN
    high = d.maximum if d.maximum is not None else d.p90 + spread * MARGIN
    if d.you is not None:
        low, high = min(low, d.you), max(high, d.you)
    if d.p10 >= 0 and d.minimum is None:
        low = max(low, 0.0)  # amounts and rates never go below zero
    if high <= low:
        high = low + 1.0
    return low, high


def _x(value: float, low: float, high: float) -> float:
    return round(LEFT + (value - low) / (high - low) * (RIGHT - LEFT), 1)


def _label_x(x: float) -> float:
    return min(max(x, LEFT + 22), RIGHT - 22)


def _anchored(x: float) -> str:
    """x and text-anchor of a long label at x: it runs away from the nearer edge."""
    third = (RIGHT - LEFT) / 3
    if x < LEFT + third:
        return f'x="{max(x - 6, 2)}" text-anchor="start"'
    if x > RIGHT - third:
        return f'x="{min(x + 6, WIDTH - 2)}" text-anchor="end"'
    return f'x="{x}" text-anchor="middle"'


def distribution_chart(d: Distribution) -> Markup:
    low, high = _domain(d)
    x10, x25, xm, x75, x90 = (_x(v, low, high) for v in (d.p10, d.p25, d.median, d.p75, d.p90))
    unit = f" {d.unit}" if d.unit else ""
    summary = (
        f"{d.label}: median {number(d.median)}{unit}; the middle 80 % of answers lie between "
        f"{number(d.p10)} and {number(d.p90)}"
    )
    if d.you is not None and d.you_percentile is not None:
        summary += f"; your answer {number(d.you)} is at the {ordinal(d.you_percentile)} percentile"
    parts = [
        f'<svg class="chart distribution" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(summary)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{BAND_BOTTOM + 4}" x2="{RIGHT}" '
        f'y2="{BAND_BOTTOM + 4}"/>',
        f'<rect class="band p10-p90" x="{x10}" y="{BAND_TOP}" width="{max(x90 - x10, 1)}" '
        f'height="{BAND_BOTTOM - BAND_TOP}" rx="4"><title>p10–p90: {escape(number(d.p10))}–'
        f"{escape(number(d.p90))}{escape(unit)}</title></rect>",
        f'<rect class="band p25-p75" x="{x25}" y="{BAND_TOP}" width="{max(x75 - x25, 1)}" '
        f'height="{BAND_BOTTOM - BAND_TOP}"><title>p25–p75: {escape(number(d.p25))}–'
        f"{escape(number(d.p75))}{escape(unit)}</title></rect>",
        f'<text class="tick" x="{_label_x(x10)}" y="{BAND_BOTTOM + 20}" text-anchor="middle">'
        f"p10 {escape(number(d.p10))}</text>",
        f'<text class="tick" x="{_label_x(x90)}" y="{BAND_BOTTOM + 20}" text-anchor="middle">'
        f"p90 {escape(number(d.p90))}</text>",
        f'<line class="median" x1="{xm}" y1="{BAND_TOP - 6}" x2="{xm}" y2="{BAND_BOTTOM + 6}"/>',
        f'<text class="median-label" {_anchored(xm)} y="{BAND_TOP - 10}">median {escape(number(d.median))}{escape(unit)}</text>',
    ]
    if _label_x(x10) - LEFT > CROWDED:
        parts.append(
            f'<text class="end" x="{LEFT}" y="{BAND_BOTTOM + 20}" text-anchor="start">'
            f"{escape(number(low))}</text>"
        )
    if RIGHT - _label_x(x90) > CROWDED:
        parts.append(
            f'<text class="end" x="{RIGHT}" y="{BAND_BOTTOM + 20}" text-anchor="end">'
            f"{escape(number(high))}</text>"
        )
    if d.you is not None:
        xy = _x(d.you, low, high)
        words = "You"
        if d.you_percentile is not None:
            words += f": {ordinal(d.you_percentile)} percentile"
        parts.append(
            f'<g class="you"><line x1="{xy}" y1="{BAND_TOP - 2}" x2="{xy}" '
            f'y2="{BAND_BOTTOM + 2}"/><circle cx="{xy}" cy="{(BAND_TOP + BAND_BOTTOM) / 2}" '
            f'r="6"/><text {_anchored(xy)} y="{HEIGHT - 6}">'
            f"{escape(words)} ({escape(number(d.you))})</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
