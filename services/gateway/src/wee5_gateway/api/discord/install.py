"""The bot's OAuth2 install flow as proof that a Discord server belongs to a community.

An admin of the community starts it: a one-time `state` (random, kept in Redis with the
community and the admin, for `discord_install_ttl_seconds`) goes into Discord's authorize URL
with the scopes `bot applications.commands guilds` (`applications.commands`: the bot registers
WEE5's slash commands there). Discord adds the bot to the server the installer picks and sends
the browser back with `code`, `state` and `guild_id`. The callback trusts none of those on
their own: it exchanges the code at Discord's token endpoint (client id and secret, the same
redirect URI), checks that the token's `guild` is that server, and asks
`GET /users/@me/guilds` with the installer's token whether they own it or hold
`MANAGE_GUILD` (or `ADMINISTRATOR`) there. Only then is the server bound.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from redis.asyncio import Redis

from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.problems import ProblemError
from wee5_kit.provider_ids import is_snowflake
from wee5_kit.redis import Keys

CALLBACK_PATH = "/api/v1/discord/install/callback"
# What the bot asks for in the server: MANAGE_ROLES (1 << 28), to give reward roles.
BOT_PERMISSIONS = 1 << 28
_ADMINISTRATOR = 1 << 3
_MANAGE_GUILD = 1 << 5


class DiscordInstallOff(ProblemError):
    status = 503
    slug = "discord-install-off"
    title = "Discord's install flow is not configured"


class InvalidInstall(ProblemError):
    status = 400
    slug = "invalid-discord-install"
    title = "The Discord install could not be verified"


class InstallerMayNotManage(ProblemError):
    status = 403
    slug = "discord-guild-not-managed"
    title = "The installer cannot manage that Discord server"


class DiscordUnavailable(ProblemError):
    status = 503
    slug = "discord-unavailable"
    title = "Discord did not answer"


@dataclass(frozen=True)
class PendingInstall:
    """What the state stands for: who started the install, for which community."""

    community_id: str
    account_id: str | None
    api_key_id: str | None
    whop_user_id: str | None

    @property
    def actor(self) -> str:
        return self.account_id or self.whop_user_id or f"api_key:{self.api_key_id}"


class InstallStates:
    """One-time install states in Redis."""

    def __init__(self, redis: Redis, keys: Keys, ttl_seconds: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    async def issue(self, pending: PendingInstall) -> str:
        state = secrets.token_urlsafe(32)
        await self.redis.set(
            self.keys("discord_install", state),
            json.dumps(pending.__dict__),
            ex=self.ttl_seconds,
        )
        return state

    async def redeem(self, state: str) -> PendingInstall:
        """The install the state stands for, once: a second use, an unknown or an expired
        state is refused."""
        if not state or len(state) > 128:
            raise InvalidInstall("the install link has no valid state; start the install again")
        value = await self.redis.getdel(self.keys("discord_install", state))
        if value is None:
            raise InvalidInstall(
                "the install link is unknown, used already or expired; start the install again"
            )
        return PendingInstall(**json.loads(value))


def redirect_uri(settings: GatewaySettings) -> str:
    return settings.public_url.rstrip("/") + CALLBACK_PATH


def authorize_url(settings: GatewaySettings, state: str) -> str:
    return oauth_url(
        settings,
        state,
        scope="bot applications.commands guilds",
        redirect=redirect_uri(settings),
        permissions=str(BOT_PERMISSIONS),
    )


def oauth_url(
    settings: GatewaySettings, state: str, *, scope: str, redirect: str, **extra: str
) -> str:
    """Discord's authorize URL for the code flow (install, sign-in, account link)."""
    query = urlencode(
        {
            "client_id": configured_client_id(settings),
            "scope": scope,
            **extra,
            "response_type": "code",
            "redirect_uri": redirect,
            "state": state,
        }
    )
    return f"{settings.discord_authorize_url}?{query}"


async def user_bearer(
    http: httpx.AsyncClient, settings: GatewaySettings, code: str, redirect: str
) -> dict[str, str]:
    """The `Authorization` header that acts as the user who approved `code` (the sign-in and
    the account link: `identify` scope)."""
    access_token = (await exchange_code(http, settings, code, redirect)).get("access_token")
    if not isinstance(access_token, str):
        raise InvalidInstall("Discord's token answer has no access token")
    return {"Authorization": f"Bearer {access_token}"}


async def exchange_code(
    http: httpx.AsyncClient, settings: GatewaySettings, code: str, redirect: str
) -> dict[str, Any]:
    """Discord's token answer for an authorization code (the client id and secret by HTTP
    Basic, the redirect URI the flow started with)."""
    client_id = configured_client_id(settings)
    secret = settings.discord_client_secret
    assert secret is not None  # configured_client_id checked it
    return await _json(
        http,
        "POST",
        f"{settings.discord_api_url.rstrip('/')}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=(client_id, secret.get_secret_value()),
    )


async def proven_guild(settings: GatewaySettings, code: str, guild_id: str) -> None:
    """Returns when `code` proves its user added the bot to `guild_id` and may manage it."""
    if not is_snowflake(guild_id):
        raise InvalidInstall("guild_id must be a Discord server id (a snowflake)")
    if not code or len(code) > 512:
        raise InvalidInstall("the install link has no code; start the install again")
    base = settings.discord_api_url.rstrip("/")
    async with httpx.AsyncClient(timeout=settings.discord_api_timeout_seconds) as http:
        token = await exchange_code(http, settings, code, redirect_uri(settings))
        access_token = token.get("access_token")
        guild = token.get("guild")
        if not isinstance(access_token, str) or not isinstance(guild, dict):
            raise InvalidInstall("Discord's token answer names no server: was the bot added?")
        if str(guild.get("id")) != guild_id:
            raise InvalidInstall("the bot was added to another server than the link names")
        guilds = await _json(
            http,
            "GET",
            f"{base}/users/@me/guilds",
            headers={"Authorization": f"Bearer {access_token}"},
        )
    mine = next(
        (g for g in guilds.get("data", []) if isinstance(g, dict) and g.get("id") == guild_id),
        None,
    )
    if mine is None or not _may_manage(mine):
        raise InstallerMayNotManage(
            "whoever installs the bot must own the Discord server or have Manage Server there"
        )


def _may_manage(guild: dict[str, Any]) -> bool:
    if guild.get("owner") is True:
        return True
    try:
        permissions = int(str(guild.get("permissions", "0")))
    except ValueError:
        return False
    return bool(permissions & (_ADMINISTRATOR | _MANAGE_GUILD))


def configured_client_id(settings: GatewaySettings) -> str:
    """The Discord application's client id; 503 naming the settings when the flow is off."""
    secret = settings.discord_client_secret
    if not settings.discord_client_id or secret is None or not secret.get_secret_value():
        raise DiscordInstallOff(
            "set WEE5_DISCORD_CLIENT_ID and WEE5_DISCORD_CLIENT_SECRET to bind Discord servers "
            "through the bot's install flow (or ask a platform admin to bind it)"
        )
    return settings.discord_client_id


async def _json(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        raise DiscordUnavailable(f"Discord did not answer: {type(error).__name__}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise DiscordUnavailable(f"Discord answered {response.status_code}; try again")
    if response.status_code >= 400:
        raise InvalidInstall(
            f"Discord refused the install's code ({response.status_code}); start the install again"
        )
    try:
        body = response.json()
    except ValueError:
        raise DiscordUnavailable("Discord sent an answer that is not JSON") from None
    if isinstance(body, list):
        return {"data": body}
    if not isinstance(body, dict):
        raise DiscordUnavailable("Discord sent an unexpected answer")
    return body
