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

    # Points for actions (ARCHITECTURE.md §4), used when a caller names a reason but no amount.
    points_benchmark_submitted: int = 50
    points_resource_downloaded: int = 5
    points_intro: int = 25
    points_subscription_renewed: int = 10
    # The MEE6 sync gives `points_mee6_sync` points per `mee6_xp_per_point` MEE6 XP gained.
    points_mee6_sync: int = 1
    mee6_xp_per_point: int = 100

    # Imports and syncs (python -m wee5_xp.tasks …).
    mee6_api_url: str = "https://mee6.xyz"
    # MEE6 documents no rate limit; clients wait between leaderboard pages to stay polite.
    mee6_page_delay_seconds: float = 2.0
    # Players per leaderboard page (MEE6 allows at most 1000).
    mee6_page_size: int = 1000
    whop_api_url: str = "https://api.whop.com/api/v1"
    # Forum posts per page (Whop's `first`).
    whop_page_size: int = 50
    # Empty: Whop is off and the forum sync says so instead of failing obscurely.
    whop_api_key: str = ""
    # Members without a profile the profile-refresh task looks up on Whop per run.
    profile_refresh_batch: int = 200
    # Timeout of one HTTP request to MEE6 or Whop, and how often a failed one is tried.
    provider_timeout_seconds: float = 10.0
    provider_attempts: int = 5
    # First wait before a retry; it doubles (with jitter) up to 30 s. Retry-After wins.
    provider_backoff_seconds: float = 0.5
    # IANA zone the days, weeks and months of boards and streaks follow, until a community
    # configures its own.
    xp_timezone: str = "UTC"
    # How long a replica keeps a community's XP config before reading it again.
    xp_config_cache_seconds: float = 5.0
    # Group commit of RecordActivity: up to this many activities per transaction, gathered for
    # at most this many milliseconds; a batch of at least that many (a bot's batch) is written
    # by this many transactions at once, its members split between them (wee5_xp/batching.py).
    xp_batch_max: int = 128
    xp_batch_window_ms: float = 2.0
    xp_batch_writers: int = 2
    # Batches whose transactions run at once: the next begins once the one before holds its
    # members' rows (1: each begins after the one before committed).
    xp_batch_depth: int = 2
