"""Settings of the billing service, from `WEE5_*` environment variables."""

from __future__ import annotations

from wee5_kit.settings import KitSettings


class BillingSettings(KitSettings):
    """Only the shared settings until the billing issue adds its own."""
