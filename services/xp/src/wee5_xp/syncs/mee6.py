"""MEE6's public leaderboard API (unofficial, undocumented beyond Mee6-documentation).

`GET {base}/api/plugins/levels/leaderboard/{guild_id}?page=N&limit=L`: pages from 0, limit at
most 1000; the last page is empty or shorter than the limit. 401 when the guild's leaderboard
is not public. No documented rate limit: pages are fetched a little apart, 429 backs off.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from wee5_kit.provider_ids import path_segment
from wee5_xp.syncs.http import USER_AGENT, ProviderError, RetryPolicy

MAX_PAGE_SIZE = 1000
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")


class Mee6LeaderboardPrivate(ProviderError):
    pass


class Mee6GuildNotFound(ProviderError):
    pass


@dataclass(frozen=True)
class Mee6Player:
    id: str
    xp: int
    level: int
    message_count: int


def valid_guild_id(guild_id: str) -> bool:
    """A Discord guild id is a snowflake: up to 20 digits."""
    return bool(_SNOWFLAKE.fullmatch(guild_id))


class Mee6Client:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        page_delay: float = 2.0,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self.retry = retry or RetryPolicy()
        self.page_delay = page_delay
        self.page_size = page_size
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    async def __aenter__(self) -> Mee6Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    async def leaderboard_page(self, guild_id: str, page: int) -> list[Mee6Player]:
        if not valid_guild_id(guild_id):
            raise ValueError(f"guild id {guild_id!r} is not a Discord snowflake")
        request = self.http.build_request(
            "GET",
            f"/api/plugins/levels/leaderboard/{path_segment(guild_id)}",
            params={"page": page, "limit": self.page_size},
        )
        response = await self.retry.send(self.http, request)
        if response.status_code in (401, 403):
            raise Mee6LeaderboardPrivate(
                f"the MEE6 leaderboard of guild {guild_id} is not public ({response.status_code})"
            )
        if response.status_code == 404:
            raise Mee6GuildNotFound(f"MEE6 knows no guild {guild_id}")
        if response.status_code != 200:
            raise ProviderError(f"MEE6 answered {response.status_code} for guild {guild_id}")
        try:
            players = response.json()["players"]
            return [_player(entry) for entry in players]
        except (ValueError, KeyError, TypeError) as error:
            raise ProviderError(f"MEE6 sent an unexpected leaderboard page: {error}") from None

    async def pages(self, guild_id: str) -> AsyncIterator[list[Mee6Player]]:
        """Every non-empty page of the guild's leaderboard, in order."""
        page = 0
        while True:
            players = await self.leaderboard_page(guild_id, page)
            if players:
                yield players
            if len(players) < self.page_size:
                return
            page += 1
            await asyncio.sleep(self.page_delay)


def _player(entry: dict[str, Any]) -> Mee6Player:
    user_id = entry["id"]
    if not isinstance(user_id, str) or not valid_guild_id(user_id):
        raise ValueError(f"player id {user_id!r} is not a snowflake string")
    return Mee6Player(
        id=user_id,
        xp=int(entry["xp"]),
        level=int(entry.get("level", 0)),
        message_count=int(entry.get("message_count", 0)),
    )
