"""End to end: messages from the Discord Gateway stand-in, through the bot process, xp, NATS
and rewards (its level-up consumer and role worker), bring a member to level 5, and the
level-5 role reward reaches Discord's REST API (the local stand-in) exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import free_port
from tests.discord.conftest import Platform, bot_env, start_bot, stop
from tests.rewards.conftest import eventually
from tests.support.discord_gateway import DiscordGateway, serving_gateway, snowflake
from tests.support.whop_api import FakeDiscord, serving
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2_grpc
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.models import RoleAssignment
from wee5_rewards.server import build as build_rewards
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp


@pytest.fixture(scope="module")
async def rest() -> AsyncIterator[FakeDiscord]:
    """Discord's REST API for the role worker (roles of guilds, PUT and DELETE of roles)."""
    fake = FakeDiscord()
    async with serving(fake, "/api/v10") as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="module")
async def platform(
    test_env: dict[str, str], database_url: str, bus: EventBus, rest: FakeDiscord
) -> AsyncIterator[Platform]:
    """xp with a message worth 1000 XP (level 5 in one message, MEE6's curve), and rewards
    with its role worker on, giving roles through the REST stand-in."""
    xp_addr, rewards_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    xp_server = await build_xp(XpSettings(xp_addr=xp_addr, xp_cooldown_seconds=0, xp_message=1000))
    await xp_server.start()
    rewards_server = await build_rewards(
        RewardsSettings(
            rewards_addr=rewards_addr,
            xp_addr=xp_addr,
            discord_api_url=rest.base_url,
            discord_bot_token=SecretStr(rest.token),
            reward_poll_seconds=0.05,
        )
    )
    await rewards_server.start()
    xp_channel, rewards_channel = channel(xp_addr), channel(rewards_addr)
    yield Platform(
        xp_addr,
        rewards_addr,
        xp_pb2_grpc.XpServiceStub(xp_channel),
        rewards_pb2_grpc.RewardsServiceStub(rewards_channel),
    )
    await xp_channel.close(None)
    await rewards_channel.close(None)
    await rewards_server.stop()
    await xp_server.stop()


@pytest.fixture(scope="module")
async def gateway(
    test_env: dict[str, str], platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DiscordGateway]:
    stand_in = DiscordGateway(guilds=[snowflake()])
    log: Path = tmp_path_factory.mktemp("discord-roles") / "bot.log"
    async with serving_gateway(stand_in):
        env = bot_env(
            test_env,
            stand_in,
            platform,
            WEE5_DISCORD_HEALTH_PORT=str(free_port()),
            WEE5_METRICS_PORT=str(free_port()),
        )
        process = start_bot(env, log)
        try:
            await stand_in.wait_live(within=30)
            yield stand_in
        finally:
            stop(process)


async def test_messages_bring_a_member_to_level_5_and_its_role_reward_is_given_once(
    gateway: DiscordGateway,
    platform: Platform,
    rest: FakeDiscord,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    guild, channel_id, member, role = snowflake(), snowflake(), snowflake(), snowflake()
    rest.add_guild(guild, role)
    community = await platform.bind(guild)
    await platform.rewards.UpsertRewardRule(
        rewards_pb2.UpsertRewardRuleRequest(
            community_id=community,
            level=5,
            reward=rewards_pb2.RewardSpec(kind=rewards_pb2.REWARD_KIND_ROLE, role_id=role),
            enabled=True,
        )
    )
    role_path = f"/api/v10/guilds/{guild}/members/{member}/roles/{role}"

    def role_puts() -> int:
        return sum(c.method == "PUT" and c.path == role_path for c in rest.calls)

    first = await gateway.message(author_id=member, channel_id=channel_id, guild_id=guild)
    await platform.reaches(community, member, 1000)  # level 5
    await gateway.redeliver(first)  # Discord sends the same message again
    await gateway.message(author_id=member, channel_id=channel_id, guild_id=guild)
    await platform.reaches(community, member, 2000)  # level 7: past 5 again, no new reward

    async def given() -> bool:
        return role_puts() >= 1

    await eventually(given)
    await asyncio.sleep(1.0)  # the level-up to 7 has been handled by then, many polls over

    assert (guild, member, role) in rest.roles
    assert role_puts() == 1
    async with sessionmaker() as session:
        queued = await session.scalars(
            select(RoleAssignment.status).where(RoleAssignment.community_id == community)
        )
        assert list(queued) == ["assigned"]
    assert await platform.xp_of(community, member) == 2000
