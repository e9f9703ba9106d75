"""Which community a Discord guild is: the community that bound it with proof (the bot's
install flow or a platform admin; rewards keeps the binding and answers GetDiscordGuild).
An unbound guild is no community: its events are ignored."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.logging import get_logger

log = get_logger("wee5.discord.guilds")

# Transient answers: asked again (a few times) before the event is given up.
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass(frozen=True)
class BoundGuild:
    community_id: str
    # "" = the community has no introductions channel.
    intro_channel_id: str
    # "" = no welcome message; its template; the onboarding DM's ("" = none).
    welcome_channel_id: str = ""
    welcome_template: str = ""
    welcome_dm_template: str = ""


class GuildDirectory:
    """Guild → community, asked of rewards and kept for `ttl` seconds (unbound ones too)."""

    def __init__(
        self, rewards: rewards_pb2_grpc.RewardsServiceAsyncStub, ttl: float, attempts: int = 3
    ) -> None:
        self.rewards = rewards
        self.ttl = ttl
        self.attempts = attempts
        self._known: dict[int, tuple[float, BoundGuild | None]] = {}

    async def community_of(self, guild_id: int) -> BoundGuild | None:
        now = time.monotonic()
        known = self._known.get(guild_id)
        if known is not None and known[0] > now:
            return known[1]
        bound = await self._ask(guild_id)
        self._known[guild_id] = (now + self.ttl, bound)
        return bound

    async def _ask(self, guild_id: int) -> BoundGuild | None:
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self.rewards.GetDiscordGuild(
                    rewards_pb2.GetDiscordGuildRequest(guild_id=str(guild_id))
                )
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                if error.code() not in _TRANSIENT or attempt == self.attempts:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
            else:
                return BoundGuild(
                    reply.community_id,
                    reply.intro_channel_id,
                    reply.welcome_channel_id,
                    reply.welcome_template,
                    reply.welcome_dm_template,
                )
        raise AssertionError("unreachable")
