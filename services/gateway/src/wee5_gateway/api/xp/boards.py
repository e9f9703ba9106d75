"""Boards as readers get them: who may read a community's leaderboard (its visibility, cached
briefly in this process), and the one-second window in which every reader of the same board
page, and of the same rank card, shares one answer from xp, so a burst of readers costs xp
one call per page (or card) and second however many ask. An award shows on a board or card
at most a second later."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_gateway.api.xp.schemas import BoardVisibility, Leaderboard, MemberCard
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Audience
from wee5_gateway.core.cache import SharedReads
from wee5_gateway.db.repository import LeaderboardSettingsRepository

DEFAULT_VISIBILITY: BoardVisibility = "members"
# Readers of one board page (or rank card) share one xp answer (WEE5_SHARED_READ_SECONDS):
# fresh for half of it, then served while the next one is read, never kept longer.
SHARED_READ_SECONDS = 1.0
FRESH_READ_SECONDS = SHARED_READ_SECONDS / 2
MAX_CACHED_BOARD_PAGES = 10_000
MAX_CACHED_CARDS = 10_000
MAX_CACHED_VISIBILITIES = 100_000
_STATE_KEY = "wee5.public_boards"

# (community, its change count, period, limit, cursor, day, name search, the viewer or "")
BoardPage = tuple[str, int, str, int, str | None, date | None, str, str]
# (community, its change count, member)
CardKey = tuple[str, int, str]


class PublicBoards:
    """Each community's board visibility (cached `visibility_ttl` seconds), and the board
    pages and rank cards readers were served (shared for `SHARED_READ_SECONDS`)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        visibility_ttl: float,
        shared_read_seconds: float = SHARED_READ_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        # Shared like the pages: one Postgres read per community however many readers find
        # it stale (each of them read it, 32 at once, every few seconds under load).
        self._visibilities: SharedReads[str, BoardVisibility] = SharedReads(
            visibility_ttl / 2, visibility_ttl, max_entries=MAX_CACHED_VISIBILITIES
        )
        self.pages: SharedReads[BoardPage, Leaderboard] = SharedReads(
            shared_read_seconds / 2, shared_read_seconds, max_entries=MAX_CACHED_BOARD_PAGES
        )
        self.cards: SharedReads[CardKey, MemberCard] = SharedReads(
            shared_read_seconds / 2, shared_read_seconds, max_entries=MAX_CACHED_CARDS
        )
        self._changes: dict[str, int] = {}

    def changes(self, community_id: str) -> int:
        """How often this process changed who is on the community's boards: part of the key
        of every shared page and card, so its own change is seen on the next read."""
        return self._changes.get(community_id, 0)

    def changed(self, community_id: str) -> None:
        """After a change made through this process (a member hiding): its pages and cards
        are read anew at once instead of at the end of their second."""
        self._changes[community_id] = self._changes.get(community_id, 0) + 1

    async def visibility(self, community_id: str) -> BoardVisibility:
        async def read() -> BoardVisibility:
            async with self.sessionmaker() as session:
                stored = await LeaderboardSettingsRepository(session).visibility(community_id)
            return cast(BoardVisibility, stored) if stored else DEFAULT_VISIBILITY

        return await self._visibilities.get(community_id, read)

    def forget_visibility(self, community_id: str) -> None:
        """After a change in this process: the next read asks Postgres."""
        self._visibilities.forget(community_id)


def provide_boards(state: State) -> PublicBoards:
    """One `PublicBoards` per app, made on first use."""
    boards = state.get(_STATE_KEY)
    if not isinstance(boards, PublicBoards):
        settings = cast(GatewaySettings, state.settings)
        boards = PublicBoards(
            state.sessionmaker,
            settings.leaderboard_visibility_cache_seconds,
            settings.shared_read_seconds,
        )
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
