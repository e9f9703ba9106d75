"""Settings of the benchmarks service, from `WEE5_*` environment variables."""

from __future__ import annotations

from wee5_kit.settings import KitSettings


class BenchmarksSettings(KitSettings):
    """Only the shared settings until the benchmarks issue adds its own."""
