"""Settings of the xp service, from `WEE5_*` environment variables."""

from __future__ import annotations

from wee5_kit.settings import KitSettings


class XpSettings(KitSettings):
    # Community defaults until a community configures its own (ARCHITECTURE.md §4).
    xp_message: int = 20
    xp_post_min: int = 15
    xp_post_max: int = 25
    xp_reaction: int = 5
    xp_cooldown_seconds: int = 60
    xp_min_message_length: int = 0
