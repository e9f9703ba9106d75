"""The distribution chart: the bands, the median and "you are here" where the numbers put
them, and labels as text, never markup."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from markupsafe import Markup

from wee5_gateway.web.charts.distribution import Distribution, distribution_chart, ordinal

SVG = "{http://www.w3.org/2000/svg}"


def chart(**changes: object) -> ET.Element:
    figures: dict[str, object] = {
        "label": "Base salary",
        "unit": "USD/year",
        "p10": 50_000.0,
        "p25": 60_000.0,
        "median": 70_000.0,
        "p75": 80_000.0,
        "p90": 90_000.0,
        "you": 72_000.0,
        "you_percentile": 58.0,
        **changes,
    }
    svg = distribution_chart(Distribution(**figures))  # type: ignore[arg-type]
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def x_of(element: ET.Element | None, name: str = "x") -> float:
    assert element is not None
    return float(element.attrib[name])


def test_the_median_and_you_sit_inside_their_bands_in_order() -> None:
    svg = chart()
    outer = svg.find(f"{SVG}rect[@class='band p10-p90']")
    inner = svg.find(f"{SVG}rect[@class='band p25-p75']")
    median = svg.find(f"{SVG}line[@class='median']")
    you = svg.find(f"{SVG}g[@class='you']/{SVG}circle")
    assert outer is not None
    assert inner is not None
    left, right = x_of(outer), x_of(outer) + x_of(outer, "width")
    assert left < x_of(inner) < x_of(median, "x1") < x_of(you, "cx") < right
    label = svg.find(f"{SVG}g[@class='you']/{SVG}text")
    assert label is not None
    assert label.text == "You: 58th percentile (72k)"


def test_labels_are_escaped() -> None:
    svg = chart(label="<script>alert(1)</script>", unit="<b>")
    title = svg.find(f"{SVG}title")
    assert title is not None
    assert title.text is not None
    assert title.text.startswith("<script>alert(1)</script>: median 70k <b>")
    assert svg.find(f".//{SVG}script") is None
    assert svg.find(f".//{SVG}b") is None


def test_without_an_answer_of_ones_own_there_is_no_marker() -> None:
    svg = chart(you=None, you_percentile=None)
    assert svg.find(f"{SVG}g[@class='you']") is None
    assert "your answer" not in svg.attrib["aria-label"]


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 92.4, 100)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "92nd", "100th",
    ]  # fmt: skip
    assert re.fullmatch(r"\d+(st|nd|rd|th)", ordinal(57.6))
