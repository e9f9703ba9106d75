"""Scraping `/metrics` as Prometheus does, parsed by prometheus-client's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from wee5_kit.metrics import serve_metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

_served: list[str] = []


def in_process_metrics_url() -> str:
    """The `/metrics` of this (the tests') process, served once on a port of its own: what
    the services and the gateway built in-process record, probes read on scrape (no cache)."""
    if not _served:
        port = free_port()
        serve_metrics(port, "127.0.0.1", cache_seconds=0)
        _served.append(f"http://127.0.0.1:{port}/metrics")
    return _served[0]


async def scrape(url: str) -> Samples:
    """Every sample of one scrape, by name and labels; fails if the text does not parse."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls) in samples if n == name and label in dict(ls)}
