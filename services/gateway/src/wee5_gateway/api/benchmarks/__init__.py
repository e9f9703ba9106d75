"""The benchmarks context: anonymous community benchmarking (categories, a member's own
submissions, privacy-floored results, the admins' outlier review), served by benchmarks."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from wee5_gateway.api.benchmarks.controller import (
    BenchmarkCategoriesController,
    BenchmarksController,
)

ROUTES: list[ControllerRouterHandler] = [BenchmarkCategoriesController, BenchmarksController]
