"""The Discord bot process: one Gateway connection per shard (hikari), guild messages and
reactions → xp activities (batched), a first message in the introductions channel → intro
points, a member joining → welcome message and onboarding DM (`WEE5_DISCORD_WELCOMES`), and
WEE5's slash commands registered in each bound guild (`CommandRegistrar`).
SIGTERM closes the Gateway connections, waits for the events being handled and sends the
pending batch before exiting. `/healthz` and `/readyz` on the health port, `/metrics` on the
metrics port.

hikari's own cache is off: the bot keeps nothing of a guild but "which community is it"
(`GuildDirectory`), and every field it needs is in the event itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any

import grpc
import hikari
from aiohttp import web

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_discord.activities import (
    INTRO_REASON,
    intro_key,
    message_activity,
    profile,
    reaction_activity,
)
from wee5_discord.batching import ActivityBatcher
from wee5_discord.commands import CommandRegistrar
from wee5_discord.config import DiscordSettings
from wee5_discord.guilds import GuildDirectory
from wee5_discord.metrics import DISCORD_EVENTS
from wee5_discord.welcomes import Welcomer, welcome_texts
from wee5_kit.grpc import channel
from wee5_kit.internal_calls import InternalCalls
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.metrics import serve_metrics

log = get_logger("wee5.discord")

# What the bot needs: guilds (GUILD_CREATE), guild messages, reactions. MESSAGE_CONTENT only
# when configured (the text's length); never DMs.
BASE_INTENTS = (
    hikari.Intents.GUILDS | hikari.Intents.GUILD_MESSAGES | hikari.Intents.GUILD_MESSAGE_REACTIONS
)


# What a member writes: a message or a reply (not system messages such as joins or pins).
MEMBER_MESSAGES = frozenset({hikari.MessageType.DEFAULT, hikari.MessageType.REPLY})


def intents(settings: DiscordSettings) -> hikari.Intents:
    wanted = BASE_INTENTS
    if settings.discord_message_content:
        wanted |= hikari.Intents.MESSAGE_CONTENT
    if settings.discord_welcomes:
        wanted |= hikari.Intents.GUILD_MEMBERS
    return wanted


class DiscordBot:
    def __init__(self, settings: DiscordSettings) -> None:
        assert settings.discord_bot_token is not None
        self.settings = settings
        calls = InternalCalls.from_settings(settings)
        deadline = settings.grpc_deadline_seconds
        self._xp_channel = channel(settings.xp_addr, default_timeout=deadline, calls=calls)
        self._rewards_channel = channel(
            settings.rewards_addr,
            default_timeout=deadline,
            retrying=[rewards_pb2.DESCRIPTOR.services_by_name["RewardsService"]],
            calls=calls,
        )
        self.xp: xp_pb2_grpc.XpServiceAsyncStub = xp_pb2_grpc.XpServiceStub(self._xp_channel)
        self.guilds = GuildDirectory(
            rewards_pb2_grpc.RewardsServiceStub(self._rewards_channel),
            ttl=settings.discord_guild_cache_seconds,
        )
        self.batcher = ActivityBatcher(
            self.xp,
            max_batch=settings.discord_batch_size,
            interval=settings.discord_batch_seconds,
        )
        self.gateway = hikari.GatewayBot(
            settings.discord_bot_token.get_secret_value(),
            intents=intents(settings),
            rest_url=settings.discord_api_url,
            cache_settings=hikari.impl.CacheSettings(components=hikari.api.CacheComponents.NONE),
            auto_chunk_members=False,
            banner=None,
            logs=None,
            suppress_optimization_warning=True,
        )
        self.commands = CommandRegistrar(self.gateway.rest)
        self.gateway.subscribe(hikari.ShardReadyEvent, self.on_ready)
        self.gateway.subscribe(hikari.GuildAvailableEvent, self.on_guild)
        self.gateway.subscribe(hikari.GuildJoinEvent, self.on_guild)
        self.gateway.subscribe(hikari.GuildMessageCreateEvent, self.on_message)
        self.gateway.subscribe(hikari.GuildReactionAddEvent, self.on_reaction)
        self.welcomer = Welcomer(
            self.gateway.rest,
            attempts=settings.discord_welcome_attempts,
            backoff=settings.discord_welcome_backoff_seconds,
        )
        if settings.discord_welcomes:
            self.gateway.subscribe(hikari.MemberCreateEvent, self.on_member_join)
        self._handling: set[asyncio.Task[None]] = set()

    async def on_ready(self, event: hikari.ShardReadyEvent) -> None:
        self.commands.application_id = event.application_id

    async def on_guild(self, event: hikari.GuildAvailableEvent | hikari.GuildJoinEvent) -> None:
        """A guild the bot is in (at start) or joined: its commands, if it is bound."""
        await self._handled(self._guild(event.guild_id), "guild")

    async def _guild(self, guild_id: hikari.Snowflake) -> None:
        bound = await self.guilds.community_of(guild_id)
        DISCORD_EVENTS.labels("guild", "unbound" if bound is None else "bound").inc()
        if bound is not None:
            self.commands.ensure(guild_id)

    async def on_message(self, event: hikari.GuildMessageCreateEvent) -> None:
        # System messages (a member joined, a boost, a pin, …) carry the member as author.
        if event.is_bot or event.is_webhook or event.message.type not in MEMBER_MESSAGES:
            DISCORD_EVENTS.labels("message", "ignored").inc()
            return
        await self._handled(self._message(event), "message")

    async def _message(self, event: hikari.GuildMessageCreateEvent) -> None:
        bound = await self.guilds.community_of(event.guild_id)
        if bound is None:
            DISCORD_EVENTS.labels("message", "unbound").inc()
            return
        DISCORD_EVENTS.labels("message", "recorded").inc()
        # A guild bound after its GUILD_CREATE (the install flow binds it as the bot joins).
        self.commands.ensure(event.guild_id)
        author = event.author
        with bound_contextvars(community_id=bound.community_id):
            self.batcher.add(
                message_activity(
                    bound.community_id,
                    message_id=event.message_id,
                    author_id=event.author_id,
                    channel_id=event.channel_id,
                    content_length=len(event.content or ""),
                    at=event.message.timestamp,
                    profile=profile(
                        author.global_name, author.username, str(author.display_avatar_url)
                    ),
                )
            )
            if bound.intro_channel_id and str(event.channel_id) == bound.intro_channel_id:
                await self._intro(bound.community_id, event.author_id)

    async def _intro(self, community_id: str, user_id: int) -> None:
        reply = await self.xp.AwardPoints(
            xp_pb2.AwardPointsRequest(
                community_id=community_id,
                user_id=str(user_id),
                reason=INTRO_REASON,
                idempotency_key=intro_key(user_id),
            )
        )
        if not reply.duplicate:
            log.info("intro points given", user_id=str(user_id))

    async def on_reaction(self, event: hikari.GuildReactionAddEvent) -> None:
        if event.member.is_bot:
            DISCORD_EVENTS.labels("reaction", "ignored").inc()
            return
        await self._handled(self._reaction(event), "reaction")

    async def _reaction(self, event: hikari.GuildReactionAddEvent) -> None:
        bound = await self.guilds.community_of(event.guild_id)
        if bound is None:
            DISCORD_EVENTS.labels("reaction", "unbound").inc()
            return
        DISCORD_EVENTS.labels("reaction", "recorded").inc()
        emoji = str(event.emoji_id) if event.emoji_id else str(event.emoji_name)
        self.batcher.add(
            reaction_activity(
                bound.community_id,
                message_id=event.message_id,
                user_id=event.user_id,
                channel_id=event.channel_id,
                emoji=emoji,
            )
        )

    async def on_member_join(self, event: hikari.MemberCreateEvent) -> None:
        if event.member.is_bot:
            DISCORD_EVENTS.labels("member_join", "ignored").inc()
            return
        await self._handled(self._welcome(event), "member_join")

    async def _welcome(self, event: hikari.MemberCreateEvent) -> None:
        bound = await self.guilds.community_of(event.guild_id)
        if bound is None:
            DISCORD_EVENTS.labels("member_join", "unbound").inc()
            return
        DISCORD_EVENTS.labels("member_join", "recorded").inc()
        if not (bound.welcome_channel_id or bound.welcome_dm_template):
            return
        if not self.welcomer.first_time(event.guild_id, event.user_id):
            return
        channel_text, dm_text = welcome_texts(
            bound.welcome_template if bound.welcome_channel_id else "",
            bound.welcome_dm_template,
            user_id=str(event.user_id),
            display_name=event.member.display_name,
        )
        self.welcomer.welcome(event.user_id, channel_text, bound.welcome_channel_id, dm_text)

    async def _handled(self, work: Coroutine[Any, Any, None], kind: str) -> None:
        """Runs one event's work, known to `stop` (which waits for it), and logs a failure
        instead of letting it vanish in the library's task."""
        task = asyncio.ensure_future(work)
        self._handling.add(task)
        try:
            await task
        except grpc.aio.AioRpcError as error:
            DISCORD_EVENTS.labels(kind, "failed").inc()
            log.error("a Discord event was not recorded", kind=kind, code=error.code().name)
        finally:
            self._handling.discard(task)

    def connected(self) -> bool:
        """Every shard of this process is connected (identified or resumed)."""
        shards = self.gateway.shards.values()
        return bool(shards) and all(shard.is_alive and shard.is_connected for shard in shards)

    async def serve_health(self) -> web.AppRunner | None:
        """`/healthz`: the process answers; `/readyz`: 200 while every shard is connected."""
        port = self.settings.discord_health_port
        if port is None:
            return None

        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def readyz(request: web.Request) -> web.Response:
            ready = self.connected()
            return web.json_response(
                {"status": "ready" if ready else "connecting"}, status=200 if ready else 503
            )

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.settings.discord_health_host, port).start()
        return runner

    async def run(self) -> int:
        """Connects every shard and runs until SIGTERM or SIGINT; the exit status."""
        health = await self.serve_health()
        port = self.settings.metrics_port
        stop_metrics = serve_metrics(port, self.settings.metrics_bind_host) if port else None
        try:
            return await self._run()
        finally:
            if health is not None:
                await health.cleanup()
            if stop_metrics is not None:
                await asyncio.to_thread(stop_metrics)

    async def _run(self) -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        self.batcher.start()
        shard_ids = self.settings.shard_ids()
        starting = asyncio.create_task(
            self.gateway.start(
                check_for_updates=False,
                shard_ids=shard_ids,
                shard_count=self.settings.discord_shard_count
                if shard_ids is not None or self.settings.discord_shard_count
                else None,
            )
        )
        log.info("discord bot starting", intents=int(intents(self.settings)))
        closed = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({starting, closed}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if starting in done:
            try:
                starting.result()
            except hikari.UnauthorizedError:
                log.error("Discord refused WEE5_DISCORD_BOT_TOKEN (401): the bot stays off")
                code = 2
            else:
                log.info("discord bot connected", shards=len(self.gateway.shards))
                await asyncio.wait(
                    {closed, asyncio.create_task(self.gateway.join())},
                    return_when=asyncio.FIRST_COMPLETED,
                )
        await self.stop(starting)
        return code

    async def stop(self, starting: asyncio.Task[None] | None = None) -> None:
        log.info("discord bot stopping")
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        # Welcomes and registrations in flight use the REST client closing the bot closes.
        await self.welcomer.close(within=min(5.0, self.settings.shutdown_grace_seconds))
        await self.commands.close()
        if self.gateway.is_alive:
            await self.gateway.close()
        if self._handling:
            await asyncio.wait(set(self._handling), timeout=self.settings.shutdown_grace_seconds)
        await self.batcher.close(within=self.settings.shutdown_grace_seconds)
        await self._xp_channel.close(None)
        await self._rewards_channel.close(None)
        log.info("discord bot stopped", activities_sent=self.batcher.sent)
