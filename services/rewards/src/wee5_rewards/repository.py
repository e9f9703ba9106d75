"""Every SQL statement of the rewards service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_rewards.models import Reward


@dataclass(frozen=True)
class NewReward:
    community_id: str
    user_id: str
    level: int
    kind: str
    free_days: int | None
    discount_percent: int | None


class RewardsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_pending(self, rewards: Sequence[NewReward]) -> list[int]:
        """Stores each reward as pending unless the member already has one for its level;
        returns the levels that were new."""
        if not rewards:
            return []
        levels = await self.session.scalars(
            insert(Reward)
            .values(
                [
                    {
                        "community_id": reward.community_id,
                        "user_id": reward.user_id,
                        "level": reward.level,
                        "kind": reward.kind,
                        "free_days": reward.free_days,
                        "discount_percent": reward.discount_percent,
                        "status": "pending",
                    }
                    for reward in rewards
                ]
            )
            .on_conflict_do_nothing(
                index_elements=[Reward.community_id, Reward.user_id, Reward.level]
            )
            .returning(Reward.level)
        )
        return sorted(levels)

    async def list_rewards(
        self,
        community_id: str,
        *,
        user_id: str | None,
        status: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[Reward]:
        """A community's rewards, newest first, starting below `before_id` when given."""
        query = select(Reward).where(Reward.community_id == community_id)
        if user_id is not None:
            query = query.where(Reward.user_id == user_id)
        if status is not None:
            query = query.where(Reward.status == status)
        if before_id is not None:
            query = query.where(Reward.id < before_id)
        rows = await self.session.scalars(query.order_by(Reward.id.desc()).limit(limit))
        return list(rows)
