"""The reward rules: which levels earn what, and recording what a level-up earned.

Functions here work inside the caller's transaction and never commit (the servicer or the
event consumer does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_rewards.errors import InvalidLevelUp
from wee5_rewards.models import Reward
from wee5_rewards.repository import NewReward, RewardsRepository

RewardKind = Literal["free_days", "discount_code"]


@dataclass(frozen=True)
class RewardRule:
    """What a member earns on reaching `level`."""

    level: int
    kind: RewardKind
    free_days: int | None = None
    discount_percent: int | None = None


# ARCHITECTURE.md §4; the only rules until communities can configure their own.
DEFAULT_RULES: tuple[RewardRule, ...] = (
    RewardRule(level=5, kind="free_days", free_days=3),
    RewardRule(level=10, kind="free_days", free_days=7),
    RewardRule(level=25, kind="free_days", free_days=14),
    RewardRule(level=50, kind="free_days", free_days=30),
    RewardRule(level=100, kind="discount_code", discount_percent=50),
)


def rewards_due(
    from_level: int, to_level: int, rules: Sequence[RewardRule] = DEFAULT_RULES
) -> list[RewardRule]:
    """The rules of every level in (from_level, to_level]: the levels a level-up newly reached."""
    due = [rule for rule in rules if from_level < rule.level <= to_level]
    return sorted(due, key=lambda rule: rule.level)


class RewardsService:
    def __init__(self, rules: Sequence[RewardRule] = DEFAULT_RULES) -> None:
        self.rules = tuple(sorted(rules, key=lambda rule: rule.level))

    def rules_of(self, community_id: str) -> tuple[RewardRule, ...]:
        """The rules that apply in a community (the defaults, until per-community rules)."""
        return self.rules

    async def record_level_up(self, session: AsyncSession, event: events_pb2.LevelUp) -> list[int]:
        """Stores one pending reward for each rule level the member passed, never twice for the
        same (community, member, level); returns the levels that were new."""
        community_id = event.meta.community_id
        if not community_id or not event.user_id:
            raise InvalidLevelUp("a level-up needs meta.community_id and user_id")
        due = rewards_due(event.from_level, event.to_level, self.rules_of(community_id))
        return await RewardsRepository(session).insert_pending(
            [
                NewReward(
                    community_id=community_id,
                    user_id=event.user_id,
                    level=rule.level,
                    kind=rule.kind,
                    free_days=rule.free_days,
                    discount_percent=rule.discount_percent,
                )
                for rule in due
            ]
        )

    async def list_rewards(
        self,
        session: AsyncSession,
        community_id: str,
        *,
        user_id: str | None = None,
        status: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Reward]:
        return await RewardsRepository(session).list_rewards(
            community_id, user_id=user_id, status=status, before_id=before_id, limit=limit
        )
