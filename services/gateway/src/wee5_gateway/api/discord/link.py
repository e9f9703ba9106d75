"""A Whop member links their Discord account (OAuth2 code flow, scope `identify`), so the
Discord roles they hold in the community's server (the subscription role, role rewards, badge
roles) reach them: Whop knows its users by Whop user id, Discord by Discord user id, and
nothing else ties the two.

The member asks for a link (`POST …/members/me/discord-link`); a one-time `state` (random,
in Redis for `discord_install_ttl_seconds`) holds their Whop user id. Discord sends the browser
back to `LINK_CALLBACK_PATH` with `code` and `state`; the code is exchanged (client id and
secret, the same redirect URI) and `GET /users/@me` names the Discord user, whom rewards then
records as that member (`LinkDiscordAccount`). Like the install's, the state is not tied to
the browser by a cookie (the sign-in's is): the link is opened from Whop's iframe in a window of
its own (Discord's pages refuse to be framed), where the iframe's cookies are not sent. It is a
256-bit secret that works once, and Discord shows its consent screen before it gives a code.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from wee5_gateway.api.discord.install import InvalidInstall, _json, oauth_url, user_bearer
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.problems import ProblemError
from wee5_kit.provider_ids import is_snowflake
from wee5_kit.redis import Keys

LINK_CALLBACK_PATH = "/api/v1/discord/link/callback"
_WHOP_USER_PREFIX = "user_"


class InvalidDiscordLink(ProblemError):
    status = 400
    slug = "invalid-discord-link"
    title = "The Discord account could not be linked"


@dataclass(frozen=True)
class PendingLink:
    """What a link state stands for: the member (Whop user id) of a community."""

    community_id: str
    user_id: str


def is_whop_user(user_id: str | None) -> bool:
    return bool(user_id) and str(user_id).startswith(_WHOP_USER_PREFIX)


class LinkStates:
    """One-time link states in Redis."""

    def __init__(self, redis: Redis, keys: Keys, ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    async def issue(self, pending: PendingLink) -> str:
        state = secrets.token_urlsafe(32)
        value = json.dumps(pending.__dict__)
        await self.redis.set(self.keys("discord_link", state), value, ex=self.ttl_seconds)
        return state

    async def redeem(self, state: str) -> PendingLink:
        """The link the state stands for, once; unknown, used or expired is refused."""
        if not state or len(state) > 128:
            raise InvalidDiscordLink("the link has no valid state; start linking again")
        value = await self.redis.getdel(self.keys("discord_link", state))
        if value is None:
            raise InvalidDiscordLink("the link is unknown, used already or expired; start again")
        return PendingLink(**json.loads(value))


def link_redirect_uri(settings: GatewaySettings) -> str:
    return settings.public_url.rstrip("/") + LINK_CALLBACK_PATH


def link_authorize_url(settings: GatewaySettings, state: str) -> str:
    return oauth_url(settings, state, scope="identify", redirect=link_redirect_uri(settings))


async def discord_user_id(settings: GatewaySettings, code: str) -> str:
    """The id of the Discord user who approved the link with `code`."""
    if not code or len(code) > 512:
        raise InvalidDiscordLink("the link has no code; start linking again")
    base = settings.discord_api_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=settings.discord_api_timeout_seconds) as http:
            bearer = await user_bearer(http, settings, code, link_redirect_uri(settings))
            me = await _json(http, "GET", f"{base}/users/@me", headers=bearer)
    except InvalidInstall:
        raise InvalidDiscordLink("Discord refused the link's code; start linking again") from None
    user_id = str(me.get("id", ""))
    if not is_snowflake(user_id):
        raise InvalidDiscordLink("Discord's user answer has no user id")
    return user_id
