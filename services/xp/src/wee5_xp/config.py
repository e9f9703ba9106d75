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
    # IANA zone the days, weeks and months of boards and streaks follow, until a community
    # configures its own.
    xp_timezone: str = "UTC"
    # How long a replica keeps a community's XP config before reading it again.
    xp_config_cache_seconds: float = 5.0
    # Group commit of RecordActivity: up to this many activities per transaction, gathered for
    # at most this many milliseconds, by this many writers (a member always goes to the same one).
    xp_batch_max: int = 128
    xp_batch_window_ms: float = 2.0
    xp_batch_writers: int = 2
