"""Fixtures of the Discord bot tests: the local Gateway stand-in, the real xp and rewards
servers (real Postgres, Redis, NATS), and the bot as a child process (`python -m
wee5_discord`) pointed at them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.conftest import free_port
from tests.rewards.conftest import eventually
from tests.support.discord_gateway import DiscordGateway, serving_gateway, snowflake
from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_rewards.config import RewardsSettings
from wee5_rewards.server import build as build_rewards
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp


@dataclass
class Platform:
    """The real xp and rewards servers the bot talks to."""

    xp_addr: str
    rewards_addr: str
    xp: xp_pb2_grpc.XpServiceAsyncStub
    rewards: rewards_pb2_grpc.RewardsServiceAsyncStub

    async def bind(self, guild_id: str, *, intro_channel_id: str = "") -> str:
        """A new community with `guild_id` bound to it (as the install flow does)."""
        community_id = f"exp_{uuid.uuid4().hex[:12]}"
        await self.rewards.BindDiscordGuild(
            rewards_pb2.BindDiscordGuildRequest(
                community_id=community_id, guild_id=guild_id, bound_by="install:test"
            )
        )
        if intro_channel_id:
            await self.rewards.UpdateRewardSettings(
                rewards_pb2.UpdateRewardSettingsRequest(
                    community_id=community_id,
                    discord_guild_id=guild_id,
                    discord_intro_channel_id=intro_channel_id,
                )
            )
        return community_id

    async def xp_of(self, community_id: str, user_id: str) -> int:
        try:
            reply = await self.xp.GetMember(
                xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise
        return reply.member.xp

    async def reasons(self, community_id: str, user_id: str) -> list[str]:
        """The reasons of the member's ledger entries, sorted."""
        reply = await self.xp.GetHistory(
            xp_pb2.GetHistoryRequest(community_id=community_id, user_id=user_id, page_size=100)
        )
        return sorted(entry.reason for entry in reply.entries)

    async def reaches(self, community_id: str, user_id: str, xp: int) -> None:
        async def reached() -> bool:
            return await self.xp_of(community_id, user_id) >= xp

        await eventually(reached)


@pytest.fixture(scope="module")
async def platform(
    test_env: dict[str, str], database_url: str, bus: EventBus
) -> AsyncIterator[Platform]:
    xp_addr, rewards_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    # 20 XP a message, 5 a reaction, no cooldown: every counted activity shows.
    xp_server = await build_xp(XpSettings(xp_addr=xp_addr, xp_cooldown_seconds=0))
    await xp_server.start()
    rewards_server = await build_rewards(
        RewardsSettings(rewards_addr=rewards_addr, xp_addr=xp_addr, rewards_workers=False)
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


def bot_env(
    test_env: dict[str, str], gateway: DiscordGateway, platform: Platform, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        **test_env,
        "WEE5_LOG_LEVEL": "INFO",
        "WEE5_DISCORD_BOT_TOKEN": gateway.token,
        "WEE5_DISCORD_API_URL": gateway.api_url,
        "WEE5_XP_ADDR": platform.xp_addr,
        "WEE5_REWARDS_ADDR": platform.rewards_addr,
        "WEE5_DISCORD_BATCH_SECONDS": "0.2",
        "WEE5_DISCORD_GUILD_CACHE_SECONDS": "60",
        **extra,
    }


def start_bot(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "wee5_discord"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def bot_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("discord") / "bot.log"


@pytest.fixture(scope="module")
def bot_health_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def bot_metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
async def gateway(
    test_env: dict[str, str],
    platform: Platform,
    bot_log: Path,
    bot_health_port: int,
    bot_metrics_port: int,
) -> AsyncIterator[DiscordGateway]:
    """The stand-in with one bot process connected to it for the whole module."""
    stand_in = DiscordGateway(guilds=[snowflake(), snowflake()])
    async with serving_gateway(stand_in):
        env = bot_env(
            test_env,
            stand_in,
            platform,
            WEE5_DISCORD_HEALTH_PORT=str(bot_health_port),
            WEE5_METRICS_PORT=str(bot_metrics_port),
        )
        process = start_bot(env, bot_log)
        try:
            await stand_in.wait_live(within=30)
            yield stand_in
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
