"""The reward rules and their exactly-once recording, against real Postgres."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import new_meta
from wee5_rewards.errors import InvalidLevelUp
from wee5_rewards.models import Reward
from wee5_rewards.service import DEFAULT_RULES, RewardRule, RewardsService, rewards_due


def level_up(community_id: str, user_id: str, from_level: int, to_level: int) -> events_pb2.LevelUp:
    return events_pb2.LevelUp(
        meta=new_meta(community_id), user_id=user_id, from_level=from_level, to_level=to_level
    )


async def record(
    sessionmaker: async_sessionmaker[AsyncSession], event: events_pb2.LevelUp
) -> list[int]:
    async with sessionmaker.begin() as session:
        return await RewardsService().record_level_up(session, event)


async def rewards_of(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> list[Reward]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Reward)
            .where(Reward.community_id == community_id)
            .order_by(Reward.user_id, Reward.level)
        )
        return list(rows)


def levels(rules: list[RewardRule]) -> list[int]:
    return [rule.level for rule in rules]


def test_default_rules_are_the_documented_level_rewards() -> None:
    documented = (
        RewardRule(level=5, kind="free_days", free_days=3),
        RewardRule(level=10, kind="free_days", free_days=7),
        RewardRule(level=25, kind="free_days", free_days=14),
        RewardRule(level=50, kind="free_days", free_days=30),
        RewardRule(level=100, kind="discount_code", discount_percent=50, discount_type="percent"),
    )
    assert documented == DEFAULT_RULES


@pytest.mark.parametrize(
    ("from_level", "to_level", "due"),
    [
        (4, 5, [5]),  # the level reached is included
        (5, 9, []),  # the level left is not: it was earned before
        (5, 10, [10]),
        (4, 11, [5, 10]),
        (10, 10, []),
        (6, 4, []),
        (0, 100, [5, 10, 25, 50, 100]),
        (99, 1000, [100]),
    ],
)
def test_rewards_due_are_the_rule_levels_in_the_half_open_range(
    from_level: int, to_level: int, due: list[int]
) -> None:
    assert levels(rewards_due(from_level, to_level)) == due


async def test_level_up_past_two_rule_levels_stores_a_pending_reward_for_each(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    assert await record(sessionmaker, level_up(community_id, "u1", 4, 11)) == [5, 10]

    rows = await rewards_of(sessionmaker, community_id)
    assert [(row.user_id, row.level, row.kind, row.free_days) for row in rows] == [
        ("u1", 5, "free_days", 3),
        ("u1", 10, "free_days", 7),
    ]
    assert {row.status for row in rows} == {"pending"}
    assert {row.attempts for row in rows} == {0}


async def test_level_100_stores_a_fifty_percent_discount_code(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    await record(sessionmaker, level_up(community_id, "u1", 99, 100))

    [row] = await rewards_of(sessionmaker, community_id)
    assert (row.level, row.kind, row.discount_percent, row.free_days) == (
        100,
        "discount_code",
        50,
        None,
    )


async def test_recording_the_same_level_up_twice_stores_one_reward(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    event = level_up(community_id, "u1", 4, 5)

    assert await record(sessionmaker, event) == [5]
    assert await record(sessionmaker, event) == []

    assert [row.level for row in await rewards_of(sessionmaker, community_id)] == [5]


async def test_overlapping_level_ups_store_each_level_once(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    assert await record(sessionmaker, level_up(community_id, "u1", 3, 5)) == [5]
    assert await record(sessionmaker, level_up(community_id, "u1", 4, 6)) == []
    assert await record(sessionmaker, level_up(community_id, "u1", 4, 11)) == [10]

    assert [row.level for row in await rewards_of(sessionmaker, community_id)] == [5, 10]


async def test_rewards_are_kept_per_member_and_per_community(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    other_community = f"{community_id}_other"
    await record(sessionmaker, level_up(community_id, "u1", 4, 5))
    await record(sessionmaker, level_up(community_id, "u2", 4, 5))
    await record(sessionmaker, level_up(other_community, "u1", 4, 5))

    assert [(row.user_id, row.level) for row in await rewards_of(sessionmaker, community_id)] == [
        ("u1", 5),
        ("u2", 5),
    ]
    assert [row.user_id for row in await rewards_of(sessionmaker, other_community)] == ["u1"]


async def test_level_up_without_a_community_or_member_is_rejected(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    with pytest.raises(InvalidLevelUp):
        await record(sessionmaker, level_up("", "u1", 4, 5))
    with pytest.raises(InvalidLevelUp):
        await record(sessionmaker, level_up(community_id, "", 4, 5))
