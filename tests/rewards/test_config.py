"""Settings of the rewards service that refuse unsafe combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wee5_rewards.config import RewardsSettings


def test_a_lease_shorter_than_one_attempt_is_refused() -> None:
    # 3 Whop calls of 10 s and an xp call of 5 s: a 30 s lease could lapse mid-attempt.
    with pytest.raises(ValidationError, match="WEE5_REWARD_LEASE_SECONDS"):
        RewardsSettings(reward_lease_seconds=30)


def test_the_defaults_are_consistent() -> None:
    settings = RewardsSettings()
    assert settings.reward_lease_seconds > 3 * settings.whop_call_timeout_seconds
    assert settings.whop_api_key is None  # rewards wait, visibly, until a key is set
