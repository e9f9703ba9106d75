"""Benchmarks: anonymous community benchmarking (categories, a member's own submissions,
privacy-floored results, the admins' outlier review), served by the benchmarks service."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.benchmarks.controller import (
    BenchmarkCategoriesController,
    BenchmarksController,
)

BENCHMARK_ROUTES: list[ControllerRouterHandler] = [
    BenchmarkCategoriesController,
    BenchmarksController,
]
