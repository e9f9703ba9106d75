"""Discord's REST API (v10) with the bot's token, for every WEE5 process that calls it: member
roles (give, take, the guild's roles), channel messages and DMs.

Each id goes into the path as one percent-encoded segment (`wee5_kit.provider_ids`). Every call
has a deadline. Answers are sorted for the caller's retry logic: `DiscordRetryable` (a 429 with
Discord's `retry_after`, a 5xx, no answer) may succeed later; `DiscordRejected` (any other 4xx:
missing permission, unknown member, role or channel) will not.
"""

from __future__ import annotations

import asyncio

import httpx

from wee5_kit.provider_ids import path_segment


class DiscordRetryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DiscordRejected(Exception):
    pass


class DiscordClient:
    def __init__(
        self,
        base_url: str,
        bot_token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bot {bot_token}",
                "User-Agent": "DiscordBot (https://github.com/wee5, 0.1)",
                "X-Audit-Log-Reason": "WEE5 reward",
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def add_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        """Gives the member the role (`PUT /guilds/{guild}/members/{user}/roles/{role}`);
        idempotent: giving a role the member has is a success."""
        await self._call("PUT", _member_role(guild_id, user_id, role_id))

    async def remove_role(self, guild_id: str, user_id: str, role_id: str) -> None:
        """Takes the role from the member (`DELETE …/members/{user}/roles/{role}`); idempotent:
        taking a role the member does not have is a success."""
        await self._call("DELETE", _member_role(guild_id, user_id, role_id))

    async def guild_roles(self, guild_id: str) -> set[str]:
        """The ids of the guild's roles (`GET /guilds/{guild}/roles`)."""
        response = await self._call("GET", f"guilds/{path_segment(guild_id)}/roles")
        try:
            roles = response.json()
            return {str(role["id"]) for role in roles}
        except (ValueError, TypeError, KeyError) as error:
            raise DiscordRetryable(f"Discord sent an unexpected role list: {error}") from None

    async def post_message(
        self, channel_id: str, content: str, *, nonce: str, mention: str | None = None
    ) -> str:
        """Posts `content` in a channel (`POST /channels/{channel}/messages`); returns the
        message id. `nonce` with `enforce_nonce`: Discord answers a repeat of the same nonce
        within a few minutes with the message it already created, so a retry after a lost
        answer does not post twice. Only `mention` (a user id) may be pinged."""
        response = await self._call(
            "POST",
            f"channels/{path_segment(channel_id)}/messages",
            json={
                "content": content,
                "nonce": nonce,
                "enforce_nonce": True,
                "allowed_mentions": {"parse": [], "users": [mention] if mention else []},
            },
        )
        return _id_of(response, "message")

    async def open_dm(self, user_id: str) -> str:
        """The id of the DM channel with a user (`POST /users/@me/channels`)."""
        response = await self._call("POST", "users/@me/channels", json={"recipient_id": user_id})
        return _id_of(response, "DM channel")

    async def _call(
        self, method: str, path: str, json: dict[str, object] | None = None
    ) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.http.request(method, path, json=json)
        except (TimeoutError, httpx.HTTPError) as error:
            raise DiscordRetryable(f"no answer from Discord: {type(error).__name__}") from None
        if response.status_code < 300:
            return response
        detail = response.text[:200]
        if response.status_code == 429:
            raise DiscordRetryable(f"Discord rate limit: {detail}", _retry_after(response))
        if response.status_code >= 500:
            raise DiscordRetryable(f"Discord answered {response.status_code}: {detail}")
        raise DiscordRejected(f"Discord answered {response.status_code}: {detail}")


def _member_role(guild_id: str, user_id: str, role_id: str) -> str:
    segments = (path_segment(value) for value in (guild_id, user_id, role_id))
    return "guilds/{}/members/{}/roles/{}".format(*segments)


def _id_of(response: httpx.Response, what: str) -> str:
    try:
        return str(response.json()["id"])
    except (ValueError, TypeError, KeyError):
        raise DiscordRetryable(
            f"Discord sent an unexpected {what}: {response.text[:200]}"
        ) from None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds Discord asks to wait: the body's `retry_after`, else the headers."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("retry_after") is not None:
            return float(body["retry_after"])
    except ValueError:
        pass
    for header in ("retry-after", "x-ratelimit-reset-after"):
        value = response.headers.get(header)
        if value is not None:
            try:
                return float(value)
            except ValueError:
                continue
    return None
