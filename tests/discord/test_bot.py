"""The Discord bot process (`python -m wee5_discord`, hikari) against the local Gateway
stand-in and the real xp and rewards servers: guild messages and reactions become XP once
each, through dropped connections, RESUMEs that replay and op 7 RECONNECTs; bots, webhooks,
DMs, no-XP channels and unbound guilds earn nothing; the introductions channel gives the
intro points once; SIGTERM sends the pending batch before the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from tests.discord.conftest import Platform, bot_env, start_bot, stop
from tests.support.discord_gateway import (
    GUILD_MEMBERS,
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    DiscordGateway,
    member_add,
    message_create,
    serving_gateway,
    snowflake,
)
from wee5.rewards.v1 import rewards_pb2
from wee5.xp.v1 import xp_pb2


async def settled(
    platform: Platform, gateway: DiscordGateway, guild_id: str, community: str
) -> None:
    """Everything dispatched before now has reached xp: a last message in the same guild is
    counted, and one more batch interval passes."""
    sentinel = snowflake()
    await gateway.message(author_id=sentinel, channel_id=snowflake(), guild_id=guild_id)
    await platform.reaches(community, sentinel, 20)
    await asyncio.sleep(0.5)


async def test_the_bot_identifies_with_its_token_and_only_the_intents_it_needs(
    gateway: DiscordGateway,
) -> None:
    identify = gateway.identifies[0]

    assert identify["token"] == gateway.token
    assert identify["intents"] == GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS
    assert not identify["intents"] & MESSAGE_CONTENT
    assert identify["shard"] == [0, 1]
    # The library asked for zlib-stream transport compression; the stand-in spoke it.
    assert gateway.compressions[0] == "zlib-stream"
    assert "GET /api/v10/gateway/bot" in gateway.rest_calls


async def test_the_bot_is_ready_while_its_shards_are_connected(
    gateway: DiscordGateway, bot_health_port: int
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bot_health_port}") as http:
        alive = await http.get("/healthz")
        ready = await http.get("/readyz")

    assert alive.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}


async def test_a_message_counts_once_though_redelivered_after_a_resume(
    gateway: DiscordGateway, platform: Platform
) -> None:
    guild, channel, member = snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild)
    first = await gateway.message(author_id=member, channel_id=channel, guild_id=guild)
    await platform.reaches(community, member, 20)
    identifies = len(gateway.identifies)
    gateway.replay_extra = 3  # the RESUME replays the first message (same id, same `s`)
    try:
        missed = message_create(author_id=member, channel_id=channel, guild_id=guild)
        await gateway.drop(during=[("MESSAGE_CREATE", missed)])
    finally:
        gateway.replay_extra = 0
    await gateway.redeliver(first)  # and Discord sends it once more under a new `s`

    await platform.reaches(community, member, 40)
    await settled(platform, gateway, guild, community)

    assert len(gateway.identifies) == identifies  # resumed, not a new session
    assert await platform.xp_of(community, member) == 40
    assert await platform.reasons(community, member) == ["message", "message"]


async def test_bots_webhooks_system_messages_and_direct_messages_earn_nothing(
    gateway: DiscordGateway, platform: Platform
) -> None:
    guild, channel, member = snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild)

    await gateway.message(author_id=member, channel_id=channel, guild_id=guild, bot=True)
    await gateway.message(
        author_id=member, channel_id=channel, guild_id=guild, webhook_id=snowflake()
    )
    await gateway.message(author_id=member, channel_id=channel, guild_id=None)  # a DM
    await gateway.message(author_id=member, channel_id=channel, guild_id=guild, message_type=7)
    await gateway.reaction(
        user_id=member, channel_id=channel, message_id=snowflake(), guild_id=guild, bot=True
    )
    await settled(platform, gateway, guild, community)

    assert await platform.xp_of(community, member) == 0


async def test_a_reaction_earns_once_and_a_no_xp_channel_earns_nothing(
    gateway: DiscordGateway, platform: Platform
) -> None:
    guild, channel, quiet, member = snowflake(), snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild)
    config = (
        await platform.xp.GetXpConfig(xp_pb2.GetXpConfigRequest(community_id=community))
    ).config
    config.no_xp_channel_ids.append(quiet)
    await platform.xp.UpdateXpConfig(
        xp_pb2.UpdateXpConfigRequest(community_id=community, config=config)
    )
    message_id = snowflake()

    reaction = await gateway.reaction(
        user_id=member, channel_id=channel, message_id=message_id, guild_id=guild
    )
    await gateway.redeliver(reaction, "MESSAGE_REACTION_ADD")
    await gateway.message(author_id=member, channel_id=quiet, guild_id=guild)
    await settled(platform, gateway, guild, community)

    assert await platform.xp_of(community, member) == 5
    assert await platform.reasons(community, member) == ["reaction"]


async def test_a_guild_bound_to_no_community_earns_nothing(
    gateway: DiscordGateway, platform: Platform
) -> None:
    unbound, guild, member = snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild)

    await gateway.message(author_id=member, channel_id=snowflake(), guild_id=unbound)
    await settled(platform, gateway, guild, community)

    assert await platform.xp_of(community, member) == 0
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await platform.rewards.GetDiscordGuild(rewards_pb2.GetDiscordGuildRequest(guild_id=unbound))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await platform.rewards.GetDiscordGuild(rewards_pb2.GetDiscordGuildRequest(guild_id="1?x"))
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_first_message_in_the_introductions_channel_earns_the_intro_points_once(
    gateway: DiscordGateway, platform: Platform
) -> None:
    guild, intros, member = snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild, intro_channel_id=intros)
    asked = await platform.rewards.GetDiscordGuild(
        rewards_pb2.GetDiscordGuildRequest(guild_id=guild)
    )
    assert (asked.community_id, asked.intro_channel_id) == (community, intros)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await platform.rewards.UpdateRewardSettings(
            rewards_pb2.UpdateRewardSettingsRequest(
                community_id=community, discord_intro_channel_id="general"
            )
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "discord_intro_channel_id" in str(refused.value.details())

    await gateway.message(author_id=member, channel_id=intros, guild_id=guild)
    await platform.reaches(community, member, 45)
    await gateway.message(author_id=member, channel_id=intros, guild_id=guild)
    await platform.reaches(community, member, 65)
    await settled(platform, gateway, guild, community)

    # Two messages (20 each) and one intro (25).
    assert await platform.xp_of(community, member) == 65
    assert await platform.reasons(community, member) == ["intro", "message", "message"]


async def test_the_bot_counts_what_it_did_with_each_event_in_its_metrics(
    gateway: DiscordGateway, platform: Platform, bot_metrics_port: int
) -> None:
    guild, member = snowflake(), snowflake()
    community = await platform.bind(guild)
    await gateway.message(author_id=member, channel_id=snowflake(), guild_id=guild, bot=True)
    await gateway.message(author_id=member, channel_id=snowflake(), guild_id=snowflake())
    await settled(platform, gateway, guild, community)

    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{bot_metrics_port}/metrics")).text

    for outcome in ("recorded", "ignored", "unbound"):
        line = f'wee5_discord_events_total{{kind="message",outcome="{outcome}"}}'
        assert line in scraped, outcome
    assert 'wee5_discord_activities_total{outcome="sent"}' in scraped


async def test_a_reconnect_resumes_the_session_and_loses_no_message(
    gateway: DiscordGateway, platform: Platform
) -> None:
    guild, channel = snowflake(), snowflake()
    community = await platform.bind(guild)
    members = [snowflake() for _ in range(3)]
    identifies, resumes = len(gateway.identifies), len(gateway.resumes)

    # Sent by Discord while the bot moves to a new connection: delivered when it resumes.
    await gateway.reconnect(
        during=[
            ("MESSAGE_CREATE", message_create(author_id=m, channel_id=channel, guild_id=guild))
            for m in members
        ]
    )

    for member in members:
        await platform.reaches(community, member, 20)
    assert len(gateway.identifies) == identifies
    assert len(gateway.resumes) == resumes + 1
    assert gateway.resumes[-1]["session_id"] in gateway.sessions


async def test_sigterm_sends_the_pending_batch_before_the_bot_exits(
    test_env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    stand_in = DiscordGateway()
    guild, channel, member = snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild)
    async with serving_gateway(stand_in):
        # A batch would wait a minute: only the shutdown sends it.
        env = bot_env(test_env, stand_in, platform, WEE5_DISCORD_BATCH_SECONDS="60")
        process = start_bot(env, tmp_path / "bot.log")
        try:
            await stand_in.wait_live()
            for _ in range(3):
                await stand_in.message(author_id=member, channel_id=channel, guild_id=guild)
            await asyncio.sleep(1.5)  # handled by the bot (the guild asked of rewards)
            assert await platform.xp_of(community, member) == 0

            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 20)
        finally:
            stop(process)

    log = (tmp_path / "bot.log").read_text()
    assert code == 0, log
    assert await platform.xp_of(community, member) == 60, log
    assert '"discord bot stopped"' in log


async def test_shards_each_identify_and_carry_their_guilds(
    test_env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    stand_in = DiscordGateway(shards=2)
    # Discord routes a guild to shard (guild_id >> 22) % shards.
    guilds = {
        shard: next(g for g in iter(snowflake, "") if (int(g) >> 22) % 2 == shard)
        for shard in (0, 1)
    }
    members = {shard: snowflake() for shard in guilds}
    communities = {shard: await platform.bind(guild) for shard, guild in guilds.items()}
    async with serving_gateway(stand_in):
        env = bot_env(test_env, stand_in, platform, WEE5_DISCORD_SHARD_COUNT="2")
        process = start_bot(env, tmp_path / "bot.log")
        try:
            await stand_in.wait_for(
                lambda: len([c for c in stand_in.connections if c.session]) == 2
            )
            for shard, guild in guilds.items():
                connection = next(
                    c for c in stand_in.connections if c.session and c.session.shard == [shard, 2]
                )
                await stand_in.send_to(
                    connection,
                    "MESSAGE_CREATE",
                    message_create(
                        author_id=members[shard], channel_id=snowflake(), guild_id=guild
                    ),
                )
            for shard in guilds:
                await platform.reaches(communities[shard], members[shard], 20)
        finally:
            stop(process)

    assert sorted(tuple(i["shard"]) for i in stand_in.identifies) == [(0, 2), (1, 2)]


async def test_a_new_member_is_welcomed_in_the_channel_and_by_dm_once(
    test_env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    stand_in = DiscordGateway(fail_posts=1)  # Discord's first answer is a 500: tried again
    guild, unbound, welcomes = snowflake(), snowflake(), snowflake()
    newcomer, later, robot = snowflake(), snowflake(), snowflake()
    community = await platform.bind(guild)
    await platform.rewards.UpdateRewardSettings(
        rewards_pb2.UpdateRewardSettingsRequest(
            community_id=community,
            discord_guild_id=guild,
            discord_welcome_channel_id=welcomes,
            discord_welcome_template="Welcome {mention} ({member})!",
            discord_welcome_dm_template="Hi {member}, say hello in #intros",
        )
    )
    async with serving_gateway(stand_in):
        env = bot_env(
            test_env,
            stand_in,
            platform,
            WEE5_DISCORD_WELCOMES="true",
            WEE5_DISCORD_WELCOME_BACKOFF_SECONDS="0.1",
        )
        process = start_bot(env, tmp_path / "bot.log")
        try:
            await stand_in.wait_live()
            joined = member_add(guild, newcomer)
            await stand_in.dispatch("GUILD_MEMBER_ADD", joined)
            await stand_in.dispatch("GUILD_MEMBER_ADD", member_add(guild, robot, bot=True))
            await stand_in.dispatch("GUILD_MEMBER_ADD", member_add(unbound, snowflake()))
            await stand_in.wait_for(lambda: len(stand_in.posted) == 2)
            await stand_in.redeliver(joined, "GUILD_MEMBER_ADD")  # as after a RESUME
            await stand_in.dispatch("GUILD_MEMBER_ADD", member_add(guild, later))
            await stand_in.wait_for(lambda: len(stand_in.posted) >= 4)
            await asyncio.sleep(0.5)
        finally:
            stop(process)

    assert stand_in.identifies[0]["intents"] & GUILD_MEMBERS
    posted = {(channel, body["content"]) for channel, body in stand_in.posted}
    dm_of = {user: channel for channel, user in stand_in.dm_channels.items()}
    assert len(stand_in.posted) == 4, stand_in.posted
    posts = [call for call in stand_in.rest_calls if call.endswith("/messages")]
    assert len(posts) == 5  # the one Discord answered 500 was sent again
    assert posted == {
        (welcomes, f"Welcome <@{newcomer}> (Newcomer)!"),
        (dm_of[newcomer], "Hi Newcomer, say hello in #intros"),
        (welcomes, f"Welcome <@{later}> (Newcomer)!"),
        (dm_of[later], "Hi Newcomer, say hello in #intros"),
    }
    welcome = next(body for channel, body in stand_in.posted if channel == welcomes)
    # Only the member may be pinged, whatever the template says.
    assert welcome["allowed_mentions"]["parse"] == []
    assert welcome["allowed_mentions"]["users"] in ([newcomer], [later])


async def test_the_bot_is_off_without_a_token_and_says_so(test_env: dict[str, str]) -> None:
    env = {**os.environ, **test_env, "WEE5_LOG_LEVEL": "INFO"}
    env.pop("WEE5_DISCORD_BOT_TOKEN", None)

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "wee5_discord"],
        env=env,
        capture_output=True,
        timeout=60,
    )

    assert done.returncode == 0
    assert b"Discord bot off: set WEE5_DISCORD_BOT_TOKEN" in done.stdout


async def test_a_wrong_token_is_refused_at_identify_and_the_bot_exits(
    test_env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    stand_in = DiscordGateway()
    async with serving_gateway(stand_in):
        env = bot_env(
            test_env, stand_in, platform, WEE5_DISCORD_BOT_TOKEN=stand_in.token[:-4] + "nope"
        )
        process = start_bot(env, tmp_path / "bot.log")
        try:
            code = await asyncio.to_thread(process.wait, 30)
        finally:
            stop(process)

    assert code == 2
    assert stand_in.identifies == []  # refused already at GET /gateway/bot (401)
    assert "Discord refused WEE5_DISCORD_BOT_TOKEN" in (tmp_path / "bot.log").read_text()
