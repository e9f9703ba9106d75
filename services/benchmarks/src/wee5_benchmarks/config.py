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
    # Submissions a process keeps in its in-memory result snapshots (about 0.5 KB each with
    # their sort orders); the least recently read community categories go first.
    benchmarks_snapshot_cache_rows: int = Field(default=1_000_000, ge=1)
