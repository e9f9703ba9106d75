"""RewardsService over real gRPC: the rewards process built in-process on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from wee5.events.v1 import events_pb2
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.communities import COMMUNITY_ID_RULE
from wee5_kit.events import new_meta
from wee5_kit.grpc import channel, check_health
from wee5_kit.pagination import encode_page_token
from wee5_rewards.config import RewardsSettings
from wee5_rewards.errors import RewardNotRetryable
from wee5_rewards.models import Reward
from wee5_rewards.server import build
from wee5_rewards.service import RewardsService
from wee5_rewards.servicer import RewardsServicer


@pytest.fixture(scope="module")
async def rewards(
    test_env: dict[str, str], database_url: str
) -> AsyncIterator[rewards_pb2_grpc.RewardsServiceAsyncStub]:
    address = f"127.0.0.1:{free_port()}"
    server = await build(RewardsSettings(rewards_addr=address, rewards_workers=False))
    await server.start()
    client = channel(address)
    try:
        assert await check_health(client)
        yield rewards_pb2_grpc.RewardsServiceStub(client)
    finally:
        await client.close(None)
        await server.stop()


async def level_up(
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
    user_id: str,
    from_level: int,
    to_level: int,
) -> None:
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id=user_id, from_level=from_level, to_level=to_level
    )
    async with sessionmaker.begin() as session:
        await RewardsService().record_level_up(session, event)


async def five_rewards(sessionmaker: async_sessionmaker[AsyncSession], community_id: str) -> None:
    """u1 reaches 5 and 10; u2 reaches 5, 10 and 25."""
    await level_up(sessionmaker, community_id, "u1", 1, 11)
    await level_up(sessionmaker, community_id, "u2", 1, 26)


async def test_list_rewards_pages_through_all_rewards_newest_first(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
) -> None:
    await five_rewards(sessionmaker, community_id)
    await level_up(sessionmaker, f"{community_id}_other", "u1", 1, 11)

    pages: list[list[rewards_pb2.Reward]] = []
    token = ""
    while True:
        reply = await rewards.ListRewards(
            rewards_pb2.ListRewardsRequest(community_id=community_id, page_size=2, page_token=token)
        )
        pages.append(list(reply.rewards))
        token = reply.next_page_token
        if not token:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    listed = [reward for page in pages for reward in page]
    ids = [int(reward.id) for reward in listed]
    assert ids == sorted(ids, reverse=True)
    assert sorted((reward.user_id, reward.level) for reward in listed) == [
        ("u1", 5),
        ("u1", 10),
        ("u2", 5),
        ("u2", 10),
        ("u2", 25),
    ]
    assert {reward.community_id for reward in listed} == {community_id}


async def test_list_rewards_defaults_to_one_page_of_everything_small(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
) -> None:
    await five_rewards(sessionmaker, community_id)

    reply = await rewards.ListRewards(rewards_pb2.ListRewardsRequest(community_id=community_id))

    assert len(reply.rewards) == 5
    assert reply.next_page_token == ""


async def test_list_rewards_filters_by_member_and_by_status(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
) -> None:
    await five_rewards(sessionmaker, community_id)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Reward)
            .where(Reward.community_id == community_id, Reward.user_id == "u2", Reward.level == 10)
            .values(status="granted")
        )

    async def listed(**filters: Any) -> list[tuple[str, int]]:
        reply = await rewards.ListRewards(
            rewards_pb2.ListRewardsRequest(community_id=community_id, **filters)
        )
        return sorted((reward.user_id, reward.level) for reward in reply.rewards)

    assert await listed(user_id="u1") == [("u1", 5), ("u1", 10)]
    assert await listed(status=rewards_pb2.REWARD_STATUS_GRANTED) == [("u2", 10)]
    assert await listed(user_id="u2", status=rewards_pb2.REWARD_STATUS_PENDING) == [
        ("u2", 5),
        ("u2", 25),
    ]
    assert await listed(user_id="nobody") == []


async def test_list_rewards_maps_free_days_and_discount_rewards(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
    sessionmaker: async_sessionmaker[AsyncSession],
    community_id: str,
) -> None:
    await level_up(sessionmaker, community_id, "u1", 4, 5)
    await level_up(sessionmaker, community_id, "u1", 99, 100)

    reply = await rewards.ListRewards(rewards_pb2.ListRewardsRequest(community_id=community_id))

    discount, free_days = reply.rewards
    assert (free_days.level, free_days.kind, free_days.free_days) == (
        5,
        rewards_pb2.REWARD_KIND_FREE_DAYS,
        3,
    )
    assert not free_days.HasField("discount")
    assert (discount.level, discount.kind, discount.free_days) == (
        100,
        rewards_pb2.REWARD_KIND_DISCOUNT_CODE,
        0,
    )
    assert (discount.discount.type, discount.discount.percent_off) == (
        rewards_pb2.DISCOUNT_TYPE_PERCENT,
        50,
    )
    for reward in reply.rewards:
        assert reward.status == rewards_pb2.REWARD_STATUS_PENDING
        assert reward.attempts == 0
        assert reward.HasField("created_at")
        assert not reward.HasField("granted_at")


@pytest.mark.parametrize(
    ("rpc", "token"),
    [
        ("ListRewards", "not-a-token"),
        ("ListRewards", encode_page_token("2026-01-01T00:00:00+00:00", 1, "u1")),  # a badge's
        ("ListRewards", encode_page_token(0)),
        ("ListRewards", encode_page_token(-3)),
        ("ListRewards", encode_page_token("abc")),
        ("ListMemberBadges", encode_page_token("yesterday", 1, "u1")),
        ("ListMemberBadges", encode_page_token("2026-01-01T00:00:00", 1, "u1")),  # no zone
        ("ListMemberBadges", encode_page_token(1)),
        ("ListMemberBadges", encode_page_token("x", "1", "u1")),
    ],
)
async def test_lists_reject_a_page_token_they_did_not_issue(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub, community_id: str, rpc: str, token: str
) -> None:
    request = getattr(rewards_pb2, f"{rpc}Request")(community_id=community_id, page_token=token)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(rewards, rpc)(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (raised.value.details() or "")


@pytest.mark.parametrize("community_id", ["has:colon", "a.b", "x" * 65])
async def test_an_invalid_community_id_is_refused_with_the_one_rule(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rewards.ListRewards(rewards_pb2.ListRewardsRequest(community_id=community_id))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == COMMUNITY_ID_RULE


async def test_list_rewards_requires_a_community(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rewards.ListRewards(rewards_pb2.ListRewardsRequest(user_id="u1"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_reward_rules_returns_the_five_default_rules(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub, community_id: str
) -> None:
    reply = await rewards.ListRewardRules(
        rewards_pb2.ListRewardRulesRequest(community_id=community_id)
    )

    assert [
        (rule.level, rule.reward.kind, rule.reward.free_days, rule.reward.discount.percent_off)
        for rule in reply.rules
    ] == [
        (5, rewards_pb2.REWARD_KIND_FREE_DAYS, 3, 0),
        (10, rewards_pb2.REWARD_KIND_FREE_DAYS, 7, 0),
        (25, rewards_pb2.REWARD_KIND_FREE_DAYS, 14, 0),
        (50, rewards_pb2.REWARD_KIND_FREE_DAYS, 30, 0),
        (100, rewards_pb2.REWARD_KIND_DISCOUNT_CODE, 0, 50),
    ]
    assert all(rule.enabled and rule.community_id == community_id for rule in reply.rules)


async def test_list_reward_rules_requires_a_community(
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rewards.ListRewardRules(rewards_pb2.ListRewardRulesRequest())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_retry_wakes_the_delivery_worker_only_after_it_committed(
    sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    seen: list[str | None] = []

    async def wake() -> None:
        # What a worker woken now would find: the retried reward must already be due.
        async with sessionmaker() as session:
            seen.append(
                await session.scalar(
                    select(Reward.status).where(Reward.community_id == community_id)
                )
            )

    servicer = RewardsServicer(RewardsService(), sessionmaker, wake)
    await level_up(sessionmaker, community_id, "u1", 4, 5)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Reward).where(Reward.community_id == community_id).values(status="dead")
        )
        reward_id = await session.scalar(
            select(Reward.id).where(Reward.community_id == community_id)
        )
    request = rewards_pb2.RetryRewardRequest(community_id=community_id, reward_id=str(reward_id))
    context: Any = None

    await servicer.RetryReward(request, context)
    assert seen == ["pending"]

    with pytest.raises(RewardNotRetryable):  # pending now: refused, rolled back, no wake-up
        await servicer.RetryReward(request, context)
    assert seen == ["pending"]
