"""Reward rules per community and backfills, over real gRPC (rewards and xp on free ports)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.rewards.conftest import RealXp, eventually
from wee5.events.v1 import events_pb2
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.events import new_meta
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.models import Reward
from wee5_rewards.server import build
from wee5_rewards.service import RewardsService

Sessions = async_sessionmaker[AsyncSession]

if TYPE_CHECKING:
    from wee5.rewards.v1.rewards_pb2_grpc import RewardsServiceAsyncStub as Stub


@pytest.fixture(scope="module")
async def rewards(real_xp: RealXp) -> AsyncIterator[Stub]:
    address = f"127.0.0.1:{free_port()}"
    server = await build(
        RewardsSettings(rewards_addr=address, xp_addr=real_xp.address, rewards_workers=False)
    )
    await server.start()
    client = channel(address)
    yield rewards_pb2_grpc.RewardsServiceStub(client)
    await client.close(None)
    await server.stop()


def free_days(days: int) -> rewards_pb2.RewardSpec:
    return rewards_pb2.RewardSpec(kind=rewards_pb2.REWARD_KIND_FREE_DAYS, free_days=days)


async def upsert(
    rewards: Stub, community_id: str, level: int, spec: rewards_pb2.RewardSpec
) -> rewards_pb2.UpsertRewardRuleResponse:
    return await rewards.UpsertRewardRule(
        rewards_pb2.UpsertRewardRuleRequest(
            community_id=community_id, level=level, reward=spec, enabled=True
        )
    )


async def rule_levels(rewards: Stub, community_id: str) -> list[tuple[int, int]]:
    reply = await rewards.ListRewardRules(
        rewards_pb2.ListRewardRulesRequest(community_id=community_id)
    )
    return [(rule.level, rule.reward.kind) for rule in reply.rules]


async def level_up(
    sessionmaker: Sessions, community_id: str, user_id: str, from_level: int, to_level: int
) -> list[int]:
    event = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id=user_id, from_level=from_level, to_level=to_level
    )
    async with sessionmaker.begin() as session:
        return await RewardsService().record_level_up(session, event)


async def levels_of(sessionmaker: Sessions, community_id: str) -> list[tuple[str, int]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Reward.user_id, Reward.level)
            .where(Reward.community_id == community_id)
            .order_by(Reward.user_id, Reward.level)
        )
        return [(row.user_id, row.level) for row in rows]


async def until_rewarded(
    sessionmaker: Sessions, community_id: str, expected: list[tuple[str, int]]
) -> None:
    """Waits for this process's rewards consumer to turn xp's level-ups into rewards."""

    async def recorded() -> bool:
        return await levels_of(sessionmaker, community_id) == expected

    await eventually(recorded)


FREE, CODE = rewards_pb2.REWARD_KIND_FREE_DAYS, rewards_pb2.REWARD_KIND_DISCOUNT_CODE


async def test_a_new_rule_joins_the_defaults_and_replacing_it_keeps_one_per_level(
    rewards: Stub, community_id: str
) -> None:
    created = await upsert(rewards, community_id, 3, free_days(1))
    replaced = await upsert(rewards, community_id, 3, free_days(2))

    assert created.created
    assert not replaced.created
    assert replaced.rule.id == created.rule.id
    assert replaced.rule.reward.free_days == 2
    assert await rule_levels(rewards, community_id) == [
        (3, FREE), (5, FREE), (10, FREE), (25, FREE), (50, FREE), (100, CODE)
    ]  # fmt: skip


async def test_deleting_a_default_rule_stops_it_granting(
    rewards: Stub, sessionmaker: Sessions, community_id: str
) -> None:
    await rewards.DeleteRewardRule(
        rewards_pb2.DeleteRewardRuleRequest(community_id=community_id, level=5)
    )

    assert [level for level, _ in await rule_levels(rewards, community_id)] == [10, 25, 50, 100]
    assert await level_up(sessionmaker, community_id, "u1", 1, 11) == [10]


async def test_rules_of_one_community_do_not_change_another(
    rewards: Stub, community_id: str
) -> None:
    await upsert(rewards, community_id, 7, free_days(1))

    other = await rule_levels(rewards, f"{community_id}_other")
    assert [level for level, _ in other] == [5, 10, 25, 50, 100]


async def test_a_flat_discount_rule_keeps_amount_currency_duration_and_expiry(
    rewards: Stub, community_id: str
) -> None:
    spec = rewards_pb2.RewardSpec(
        kind=CODE,
        discount=rewards_pb2.Discount(
            type=rewards_pb2.DISCOUNT_TYPE_FLAT,
            amount_off_minor=500,
            currency="USD",
            duration_months=3,
            expires_in_days=30,
        ),
    )
    rule = (await upsert(rewards, community_id, 20, spec)).rule

    discount = rule.reward.discount
    assert (discount.type, discount.amount_off_minor, discount.currency) == (
        rewards_pb2.DISCOUNT_TYPE_FLAT,
        500,
        "usd",
    )
    assert (discount.duration_months, discount.expires_in_days) == (3, 30)


@pytest.mark.parametrize(
    ("level", "spec", "field"),
    [
        (0, free_days(3), "level"),
        (5, free_days(0), "free_days"),
        (5, free_days(2000), "free_days"),
        (5, rewards_pb2.RewardSpec(), "kind"),
        (5, rewards_pb2.RewardSpec(kind=CODE), "discount.type"),
        (
            5,
            rewards_pb2.RewardSpec(
                kind=CODE,
                discount=rewards_pb2.Discount(
                    type=rewards_pb2.DISCOUNT_TYPE_PERCENT, percent_off=150
                ),
            ),
            "percent_off",
        ),
        (
            5,
            rewards_pb2.RewardSpec(
                kind=CODE,
                discount=rewards_pb2.Discount(
                    type=rewards_pb2.DISCOUNT_TYPE_FLAT, amount_off_minor=100
                ),
            ),
            "currency",
        ),
        (5, rewards_pb2.RewardSpec(kind=rewards_pb2.REWARD_KIND_ROLE, role_id="admins"), "role_id"),
    ],
)
async def test_an_invalid_rule_is_refused_naming_the_field(
    rewards: Stub, community_id: str, level: int, spec: rewards_pb2.RewardSpec, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await upsert(rewards, community_id, level, spec)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")


async def test_a_badge_rule_needs_a_badge_of_the_community(
    rewards: Stub, community_id: str
) -> None:
    spec = rewards_pb2.RewardSpec(kind=rewards_pb2.REWARD_KIND_BADGE, badge_id="999999999")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await upsert(rewards, community_id, 5, spec)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_deleting_an_unknown_rule_is_not_found(rewards: Stub, community_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rewards.DeleteRewardRule(
            rewards_pb2.DeleteRewardRuleRequest(community_id=community_id, level=77)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_rule_added_later_does_not_reach_back_without_a_backfill(
    rewards: Stub, sessionmaker: Sessions, community_id: str
) -> None:
    await level_up(sessionmaker, community_id, "u1", 1, 11)  # earns 5 and 10
    await upsert(rewards, community_id, 7, free_days(1))

    assert await level_up(sessionmaker, community_id, "u1", 11, 12) == []
    assert await levels_of(sessionmaker, community_id) == [("u1", 5), ("u1", 10)]


async def test_backfill_grants_each_missing_reward_once(
    rewards: Stub, real_xp: RealXp, sessionmaker: Sessions, community_id: str
) -> None:
    assert await real_xp.messages(community_id, "high", 4) == 10
    assert await real_xp.messages(community_id, "mid", 1) == 5
    await until_rewarded(sessionmaker, community_id, [("high", 5), ("high", 10), ("mid", 5)])
    await upsert(rewards, community_id, 3, free_days(1))  # a rule added later

    request = rewards_pb2.BackfillRewardsRequest(community_id=community_id)
    dry = await rewards.BackfillRewards(
        rewards_pb2.BackfillRewardsRequest(community_id=community_id, dry_run=True)
    )
    first = await rewards.BackfillRewards(request)
    second = await rewards.BackfillRewards(request)

    # Each member misses level 3 and holds the rest.
    assert (dry.created_count, dry.skipped_count) == (2, 3)
    assert (first.created_count, first.skipped_count) == (2, 3)
    assert (second.created_count, second.skipped_count) == (0, 5)
    assert await levels_of(sessionmaker, community_id) == [
        ("high", 3), ("high", 5), ("high", 10), ("mid", 3), ("mid", 5)
    ]  # fmt: skip


async def test_backfill_of_one_rule_grants_only_that_rule(
    rewards: Stub, real_xp: RealXp, sessionmaker: Sessions, community_id: str
) -> None:
    await real_xp.messages(community_id, "mid", 1)
    await until_rewarded(sessionmaker, community_id, [("mid", 5)])
    rule = (await upsert(rewards, community_id, 2, free_days(1))).rule

    reply = await rewards.BackfillRewards(
        rewards_pb2.BackfillRewardsRequest(community_id=community_id, rule_id=rule.id)
    )

    assert reply.created_count == 1
    assert await levels_of(sessionmaker, community_id) == [("mid", 2), ("mid", 5)]


async def test_retry_of_a_granted_or_unknown_reward_is_refused(
    rewards: Stub, sessionmaker: Sessions, community_id: str
) -> None:
    await level_up(sessionmaker, community_id, "u1", 4, 5)
    listed = await rewards.ListRewards(rewards_pb2.ListRewardsRequest(community_id=community_id))

    with pytest.raises(grpc.aio.AioRpcError) as pending:
        await rewards.RetryReward(
            rewards_pb2.RetryRewardRequest(
                community_id=community_id, reward_id=listed.rewards[0].id
            )
        )
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await rewards.RetryReward(
            rewards_pb2.RetryRewardRequest(community_id=community_id, reward_id="123456789")
        )
    assert pending.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_settings_keep_a_valid_template_and_refuse_unknown_variables(
    rewards: Stub, community_id: str
) -> None:
    default = await rewards.GetRewardSettings(
        rewards_pb2.GetRewardSettingsRequest(community_id=community_id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as unproven:  # a guild is bound with proof only
        await rewards.UpdateRewardSettings(
            rewards_pb2.UpdateRewardSettingsRequest(
                community_id=community_id, discord_guild_id="123456789012345678"
            )
        )
    guild = str(10**18 + int(community_id.removeprefix("exp_"), 16) % 10**17)
    await rewards.BindDiscordGuild(
        rewards_pb2.BindDiscordGuildRequest(
            community_id=community_id, guild_id=guild, bound_by="platform_admin:test"
        )
    )
    updated = await rewards.UpdateRewardSettings(
        rewards_pb2.UpdateRewardSettingsRequest(
            community_id=community_id,
            level_up_template="{member} is level {level} (#{rank}) and gets {reward}",
            discord_guild_id=guild,
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rewards.UpdateRewardSettings(
            rewards_pb2.UpdateRewardSettingsRequest(
                community_id=community_id, level_up_template="{member.__class__} {secret}"
            )
        )

    assert "{member}" in default.settings.level_up_template
    assert updated.settings.level_up_template.startswith("{member} is level {level}")
    assert unproven.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert updated.settings.discord_guild_id == guild
    assert updated.settings.discord_guild_bound_by == "platform_admin:test"
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
