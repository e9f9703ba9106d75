"""`make up` with a Discord bot token runs the bot beside the platform: a message in a server
bound through the API reaches the member's XP, and Ctrl-C stops the bot with the rest."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.rewards.conftest import eventually
from tests.support.discord_gateway import DiscordGateway, serving_gateway, snowflake
from tests.support.gateway import bearer
from tests.support.stack import launch_stack, stack_env, stop_stack
from wee5_gateway.config import GatewaySettings

pytestmark = pytest.mark.e2e


async def test_make_up_runs_the_discord_bot_and_a_message_in_a_bound_server_earns_xp(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    stand_in = DiscordGateway()
    community, guild, member = f"exp_{uuid.uuid4().hex[:12]}", snowflake(), snowflake()
    async with serving_gateway(stand_in):
        env = stack_env(
            test_env,
            tmp_path,
            WEE5_DISCORD_BOT_TOKEN=stand_in.token,
            WEE5_DISCORD_API_URL=stand_in.api_url,
            WEE5_DISCORD_BATCH_SECONDS="0.2",
        )
        stack = await asyncio.to_thread(launch_stack, env, tmp_path)
        try:
            await stand_in.wait_live(within=60)
            headers = bearer(GatewaySettings(), platform_admin=True)
            async with httpx.AsyncClient(base_url=stack.base_url, headers=headers) as http:
                bound = await http.put(
                    f"/api/v1/communities/{community}/discord-guild", json={"guild_id": guild}
                )
                assert bound.status_code == 200, bound.text
                await stand_in.message(author_id=member, channel_id=snowflake(), guild_id=guild)

                async def earned() -> bool:
                    card = await http.get(f"/api/v1/communities/{community}/members/{member}")
                    return card.status_code == 200 and card.json()["xp"] == 20

                await eventually(earned, within=30)
        finally:
            await asyncio.to_thread(stop_stack, stack)

    output = stack.log.read_text(errors="replace")
    assert "discord started" in output
    assert "discord stopped (rc=0)" in output
