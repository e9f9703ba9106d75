"""Daily series charts drawn on the server: one bar per day, whole-number axes, escaped text."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from markupsafe import Markup

from wee5_gateway.web.charts.series import bar_chart, line_chart, nice_ceiling

DAYS = [date(2026, 11, 26) + timedelta(days=n) for n in range(7)]


def test_a_bar_chart_draws_one_bar_per_day_scaled_to_the_axis() -> None:
    svg = bar_chart("Active members", list(zip(DAYS, [0, 1, 2, 3, 0, 0, 8], strict=True)))

    assert isinstance(svg, Markup)
    bars = re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"[^>]*data-value="(\d+)"', svg)
    assert [value for _, value in bars] == ["0", "1", "2", "3", "0", "0", "8"]
    heights = [float(height) for height, _ in bars]
    assert heights[6] == max(heights)
    assert heights[3] == pytest.approx(heights[6] * 3 / 8, abs=0.1)
    assert 'data-days="7"' in svg


def test_chart_titles_and_series_names_are_text_not_markup() -> None:
    svg = line_chart("<script>alert(1)</script>", DAYS[:2], {"custom:<b>": [1, 2]})

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "custom:&lt;b&gt;" in svg


def test_the_axis_top_is_a_round_number_with_a_whole_middle() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 2, 3, 5, 7, 9, 11, 60, 61, 450)] == [
        1, 1, 2, 4, 6, 8, 10, 20, 60, 80, 600,
    ]  # fmt: skip
