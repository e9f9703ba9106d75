"""Settings of the resources service, from `WEE5_*` environment variables."""

from __future__ import annotations

from wee5_kit.settings import KitSettings


class ResourcesSettings(KitSettings):
    """Only the shared settings until the resources issue adds its own."""
