"""Sign in with Discord for the pages outside Whop (OAuth2 code flow, scopes `identify guilds`).

`GET /app/sign-in/discord` keeps a one-time `state` in Redis (for `discord_install_ttl_seconds`)
and the same value in a cookie of this browser, then sends the browser to Discord's authorize
URL. The callback refuses (400) a state that is not this browser's, unknown, expired or used;
only then is the code exchanged (client id and secret, the same redirect URI) and the user
(`GET /users/@me`) and their servers (`GET /users/@me/guilds`) read with its token. A server
bound to a community makes the user admin there when they own it or hold MANAGE_GUILD or
ADMINISTRATOR, a linked member otherwise; this is worked out anew at every sign-in.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import grpc
import httpx
from redis.asyncio import Redis

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.discord.install import (
    InvalidInstall,
    _json,
    _may_manage,
    oauth_url,
    user_bearer,
)
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.problems import ProblemError
from wee5_kit.provider_ids import is_snowflake
from wee5_kit.redis import Keys

SIGN_IN_PATH = "/app/sign-in/discord"
CALLBACK_PATH = SIGN_IN_PATH + "/callback"
STATE_COOKIE = "wee5_discord_state"
# More servers than a Discord user can join (200 with Nitro) are not looked at.
MAX_GUILDS = 200


class InvalidSignIn(ProblemError):
    status = 400
    slug = "invalid-discord-sign-in"
    title = "The Discord sign-in could not be verified"


@dataclass(frozen=True)
class DiscordUser:
    id: str
    name: str
    # guild id -> True when the user may manage it (owner, MANAGE_GUILD or ADMINISTRATOR)
    guilds: dict[str, bool]


class SignInStates:
    """One-time sign-in states in Redis, each naming where to go after signing in."""

    def __init__(self, redis: Redis, keys: Keys, ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    async def issue(self, next_path: str) -> str:
        state = secrets.token_urlsafe(32)
        await self.redis.set(self.keys("discord_sign_in", state), next_path, ex=self.ttl_seconds)
        return state

    async def redeem(self, state: str, browser_state: str | None) -> str:
        """Where to go next, once; a state not started in this browser, unknown, used or
        expired is refused."""
        if not state or len(state) > 128:
            raise InvalidSignIn("the sign-in link has no valid state; sign in again")
        if not browser_state or not secrets.compare_digest(state, browser_state):
            raise InvalidSignIn("this sign-in was not started in this browser; sign in again")
        value = await self.redis.getdel(self.keys("discord_sign_in", state))
        if value is None:
            raise InvalidSignIn("the sign-in link is unknown, used already or expired")
        return value.decode() if isinstance(value, bytes) else str(value)


def redirect_uri(settings: GatewaySettings) -> str:
    return settings.public_url.rstrip("/") + CALLBACK_PATH


def authorize_url(settings: GatewaySettings, state: str) -> str:
    return oauth_url(settings, state, scope="identify guilds", redirect=redirect_uri(settings))


async def discord_user(settings: GatewaySettings, code: str) -> DiscordUser:
    """The Discord user who approved the sign-in with `code`, and their servers."""
    if not code or len(code) > 512:
        raise InvalidSignIn("the sign-in link has no code; sign in again")
    try:
        return await _read_user(settings, code)
    except InvalidInstall:
        raise InvalidSignIn("Discord refused the sign-in's code or token; sign in again") from None


async def _read_user(settings: GatewaySettings, code: str) -> DiscordUser:
    base = settings.discord_api_url.rstrip("/")
    async with httpx.AsyncClient(timeout=settings.discord_api_timeout_seconds) as http:
        bearer = await user_bearer(http, settings, code, redirect_uri(settings))
        me = await _json(http, "GET", f"{base}/users/@me", headers=bearer)
        guilds = await _json(http, "GET", f"{base}/users/@me/guilds", headers=bearer)
    user_id = str(me.get("id", ""))
    if not is_snowflake(user_id):
        raise InvalidSignIn("Discord's user answer has no user id")
    name = me.get("global_name") or me.get("username") or ""
    listed = [g for g in guilds.get("data", []) if isinstance(g, dict)][:MAX_GUILDS]
    return DiscordUser(
        id=user_id,
        name=str(name)[:100],
        guilds={str(g.get("id")): _may_manage(g) for g in listed if is_snowflake(str(g.get("id")))},
    )


async def community_roles(downstream: Downstream, user: DiscordUser) -> dict[str, str]:
    """community id -> `admin` or `member`, for each of the user's servers bound to one."""

    async def community_of(guild_id: str) -> str | None:
        try:
            reply = await downstream.rewards.GetDiscordGuild(
                rewards_pb2.GetDiscordGuildRequest(guild_id=guild_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.community_id or None

    guild_ids = list(user.guilds)
    communities = await asyncio.gather(*(community_of(guild_id) for guild_id in guild_ids))
    roles: dict[str, str] = {}
    for guild_id, community_id in zip(guild_ids, communities, strict=True):
        if community_id is not None:
            role = "admin" if user.guilds[guild_id] else "member"
            if roles.get(community_id) != "admin":
                roles[community_id] = role
    return roles
