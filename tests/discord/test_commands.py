"""The bot registers WEE5's slash commands (`wee5_kit.discord_commands`) with Discord's bulk
overwrite in every guild bound to a community, and in no other: at start, when it joins a
bound guild, and with the first activity in a guild bound after its GUILD_CREATE."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.discord.conftest import Platform, bot_env, start_bot, stop
from tests.support.discord_gateway import (
    BOT_USER_ID,
    DiscordGateway,
    guild,
    serving_gateway,
    snowflake,
)
from wee5_kit.discord_commands import MANAGE_GUILD


def by_name(commands: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {command["name"]: command for command in commands}


def options_of(command: dict[str, Any]) -> list[tuple[str, int, bool]]:
    return [(o["name"], o["type"], o.get("required", False)) for o in command.get("options", [])]


async def test_the_bot_registers_the_commands_in_bound_guilds_only(
    test_env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    bound, unbound, bound_later = snowflake(), snowflake(), snowflake()
    community = await platform.bind(bound)
    stand_in = DiscordGateway(guilds=[unbound, bound_later, bound])
    async with serving_gateway(stand_in):
        # The guild directory forgets quickly: a guild bound while the bot runs is seen so.
        env = bot_env(test_env, stand_in, platform, WEE5_DISCORD_GUILD_CACHE_SECONDS="0.2")
        process = start_bot(env, tmp_path / "bot.log")
        try:
            await stand_in.wait_for(lambda: stand_in.registered_in(bound))

            [(application_id, _, commands)] = stand_in.registrations
            assert application_id == BOT_USER_ID
            registered = by_name(commands)
            assert sorted(registered) == ["give-xp", "rank", "rewards", "top"]
            give_xp = registered["give-xp"]
            assert int(give_xp["default_member_permissions"]) == MANAGE_GUILD
            assert options_of(give_xp) == [
                ("member", 6, True),
                ("amount", 4, True),
                ("reason", 3, True),
            ]
            amount = give_xp["options"][1]
            assert (amount["min_value"], amount["max_value"]) == (-10_000_000, 10_000_000)
            assert options_of(registered["rank"]) == [("member", 6, False)]
            top_period = registered["top"]["options"][0]
            assert [c["value"] for c in top_period["choices"]] == ["all", "month", "week", "day"]
            assert options_of(registered["rewards"]) == []
            for name in ("rank", "top", "rewards"):
                assert registered[name].get("default_member_permissions") is None, name
            assert all(command["description"] for command in commands)

            # A bound guild the bot joins (GUILD_CREATE without `unavailable`).
            joined = snowflake()
            await platform.bind(joined)
            joined_guild = guild(joined)
            del joined_guild["unavailable"]
            await stand_in.dispatch("GUILD_CREATE", joined_guild)
            await stand_in.wait_for(lambda: stand_in.registered_in(joined))

            # A guild bound after its GUILD_CREATE: registered with its first message.
            later_community = await platform.bind(bound_later)
            await asyncio.sleep(0.5)
            author = snowflake()
            await stand_in.message(author_id=author, channel_id=snowflake(), guild_id=bound_later)
            await stand_in.wait_for(lambda: stand_in.registered_in(bound_later))
            await platform.reaches(later_community, author, 20)

            # Once per guild and process: the guild's next events register nothing again.
            other = snowflake()
            await stand_in.message(author_id=other, channel_id=snowflake(), guild_id=bound)
            await platform.reaches(community, other, 20)
            await asyncio.sleep(0.5)
            assert len(stand_in.registered_in(bound)) == 1
            assert stand_in.registered_in(unbound) == []
            assert len(stand_in.registrations) == 3
        finally:
            stop(process)
