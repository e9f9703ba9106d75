"""Settings of the rewards service, from `WEE5_*` environment variables."""

from __future__ import annotations

from wee5_kit.settings import KitSettings


class RewardsSettings(KitSettings):
    """Only the shared settings so far; the Whop delivery worker will add its own."""
