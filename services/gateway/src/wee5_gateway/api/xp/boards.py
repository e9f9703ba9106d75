"""Public boards: who may read a community's leaderboard (its visibility, cached briefly in
this process) and the short cache that answers anonymous readers, so anonymous traffic asks
xp at most once a second per board page (community, period, limit, cursor, day,
name search)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.api.xp.schemas import BoardVisibility, Leaderboard
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Audience
from wee5_gateway.core.cache import TtlCache
from wee5_gateway.db.repository import LeaderboardSettingsRepository

DEFAULT_VISIBILITY: BoardVisibility = "members"
# Anonymous readers of one board page share one xp answer for this long.
ANONYMOUS_BOARD_SECONDS = 1.0
MAX_CACHED_BOARD_PAGES = 10_000
MAX_CACHED_VISIBILITIES = 100_000
_STATE_KEY = "wee5.public_boards"

# (community, period, limit, cursor, day, name search)
BoardPage = tuple[str, str, int, str | None, date | None, str]


class PublicBoards:
    """Each community's board visibility (cached `visibility_ttl` seconds) and the pages
    anonymous readers were served (cached `ANONYMOUS_BOARD_SECONDS`)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], visibility_ttl: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self._visibilities: TtlCache[str, BoardVisibility] = TtlCache(
            visibility_ttl, max_entries=MAX_CACHED_VISIBILITIES
        )
        # The value is the xp call itself: readers arriving while it runs wait for the same
        # answer instead of each asking xp (one call per page and second, however many ask).
        self._pages: TtlCache[BoardPage, asyncio.Future[Leaderboard]] = TtlCache(
            ANONYMOUS_BOARD_SECONDS, max_entries=MAX_CACHED_BOARD_PAGES
        )

    async def visibility(self, community_id: str) -> BoardVisibility:
        cached = self._visibilities.get(community_id)
        if cached is not None:
            return cached
        generation = self._visibilities.generation()
        async with self.sessionmaker() as session:
            stored = await LeaderboardSettingsRepository(session).visibility(community_id)
        visibility = cast(BoardVisibility, stored) if stored else DEFAULT_VISIBILITY
        self._visibilities.put(community_id, visibility, generation)
        return visibility

    def forget_visibility(self, community_id: str) -> None:
        """After a change in this process: the next read asks Postgres."""
        self._visibilities.invalidate(community_id)

    async def anonymous_page(
        self, page: BoardPage, read: Callable[[], Awaitable[Leaderboard]]
    ) -> Leaderboard:
        """The page as served to anonymous readers in the last second, else `read()` once."""
        pending = self._pages.get(page)
        if pending is None:
            pending = asyncio.ensure_future(read())
            pending.add_done_callback(_observe)
            self._pages.put(page, pending, self._pages.generation())
        try:
            # Shielded: one reader hanging up does not cancel the answer the others wait for.
            return await asyncio.shield(pending)
        except Exception:
            if self._pages.get(page) is pending:
                self._pages.invalidate(page)  # a failure is not kept for the next reader
            raise


def _observe(future: asyncio.Future[Leaderboard]) -> None:
    # Marks a failure as seen when every reader has gone: no "exception never retrieved".
    if not future.cancelled():
        future.exception()


def provide_boards(state: State) -> PublicBoards:
    """One `PublicBoards` per app, made on first use."""
    boards = state.get(_STATE_KEY)
    if not isinstance(boards, PublicBoards):
        settings = cast(GatewaySettings, state.settings)
        boards = PublicBoards(state.sessionmaker, settings.leaderboard_visibility_cache_seconds)
        state[_STATE_KEY] = boards
    return boards


async def board_audience(
    connection: ASGIConnection[Any, Any, Any, Any], community_id: str
) -> Audience:
    """Who may read the community's leaderboard (the guard's audience lookup)."""
    return Audience(await provide_boards(connection.app.state).visibility(community_id))


async def card_audience(
    connection: ASGIConnection[Any, Any, Any, Any], community_id: str
) -> Audience:
    """Who may see a member's rank card image: anyone when the board is public, else the
    card's own rule (members), whatever an admins-only board says of the board itself."""
    visibility = await provide_boards(connection.app.state).visibility(community_id)
    return Audience.PUBLIC if visibility == "public" else Audience.MEMBERS
