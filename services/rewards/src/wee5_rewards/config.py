"""Settings of the rewards service, from `WEE5_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from wee5_kit.settings import KitSettings


class RewardsSettings(KitSettings):
    # Whop's REST API. Without a key, rewards wait (status `waiting`) instead of failing.
    whop_api_url: str = "https://api.whop.com/api/v1"
    whop_api_key: SecretStr | None = None
    # The company promo codes are created in; unset: the company of the member's membership.
    whop_company_id: str | None = None
    # Deadline of one HTTP call to Whop.
    whop_call_timeout_seconds: float = Field(default=10.0, gt=0)

    # Run the Whop delivery and Discord role workers in this process (replicas may all run
    # them; turn off for a process that should only answer gRPC).
    rewards_workers: bool = True

    # Delivery: attempts per reward before it is dead (an admin retry starts a new budget);
    # the wait before attempt n+1 is min(max, base * 2^(n-1)) scaled by a random 0.5..1.
    reward_max_attempts: int = Field(default=10, ge=1)
    reward_backoff_base_seconds: float = Field(default=30.0, gt=0)
    reward_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # How long a worker's claim on a reward lasts: a worker that dies mid-apply leaves the
    # reward to be reclaimed (and checked with Whop) after this. Longer than the calls of one
    # attempt (three Whop calls and an xp call, each with its deadline).
    reward_lease_seconds: float = Field(default=120.0, gt=0)
    # How often the worker looks for due rewards when nothing woke it.
    reward_poll_seconds: float = Field(default=2.0, gt=0)
    # Attempts per announcement before it is dead (same backoff, lease and poll as rewards).
    announcement_max_attempts: int = Field(default=5, ge=1)
    # Announcements sent per community and minute; the rest of a burst (a curve change that
    # levels up thousands) collapse into one summary message per minute.
    announcement_burst: int = Field(default=20, ge=1)
    announcement_burst_window_seconds: float = Field(default=60.0, gt=0)
    # How long a reward waits before xp is asked again for the member's Whop membership.
    membership_recheck_seconds: float = Field(default=600.0, gt=0)

    # How long a community's automatic badges are kept in memory between XP events. A change
    # drops them at once in every replica (over NATS); this bounds a missed notice.
    badge_cache_seconds: float = Field(default=30.0, ge=0)

    # Discord's REST API for role assignment. Without a token, role assignments wait.
    discord_api_url: str = "https://discord.com/api/v10"
    discord_bot_token: SecretStr | None = None
    discord_call_timeout_seconds: float = Field(default=10.0, gt=0)
    role_max_attempts: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> RewardsSettings:
        # A lease that lapsed while its worker still waits on Whop would let a second worker
        # check (and write) before the first one's write is visible.
        attempt = 3 * self.whop_call_timeout_seconds + self.grpc_deadline_seconds
        if self.reward_lease_seconds <= attempt:
            raise ValueError(
                f"WEE5_REWARD_LEASE_SECONDS must exceed one attempt's deadlines ({attempt} s)"
            )
        return self
