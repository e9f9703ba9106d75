"""Settings of the benchmarks service, from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import Field

from wee5_kit.settings import KitSettings


class BenchmarksSettings(KitSettings):
    # Whether benchmarks are on in a community whose owner never chose.
    benchmarks_enabled_by_default: bool = False
    # Fewest valid submissions behind any figure shown (never below 5).
    benchmarks_privacy_floor: int = Field(default=5, ge=5)
    # Fewest values in a cell before its minimum and maximum are shown.
    benchmarks_min_max_floor: int = Field(default=10, ge=5)
    # Fewest accepted values a field needs before new answers are checked for outliers.
    benchmarks_outlier_min_sample: int = Field(default=10, ge=3)
    # How often a member may change one submission per 24 hours (bounds probing results by
    # editing one's own answer over and over).
    benchmarks_revisions_per_day: int = Field(default=10, ge=1)
    # Community categories whose result snapshots a process keeps in memory.
    benchmarks_snapshot_cache_size: int = Field(default=256, ge=1)
