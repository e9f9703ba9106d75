"""The reads of xp: a member's rank card, leaderboard pages, ledger history and analytics.

Boards are read from Redis; while Redis lacks one (it is being rebuilt in the background,
`Leaderboards.ready`) or cannot answer, from Postgres, and the answer says so (`updating`).
Everything else from Postgres through the repository. Nothing here writes member data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.logging import get_logger
from wee5_kit.outages import unavailable_dependency
from wee5_kit.pagination import take_page
from wee5_xp.errors import (
    InvalidAnalyticsRequest,
    InvalidHistoryRequest,
    InvalidLeaderboardRequest,
    MemberNotFound,
)
from wee5_xp.leaderboards import (
    PERIODS,
    Leaderboards,
    Score,
    local_day,
    period_start,
)
from wee5_xp.levels import Progress
from wee5_xp.models import LedgerEntry, Member
from wee5_xp.profiles import ProfileFields
from wee5_xp.repository import (
    AnalyticsRepository,
    DailyActivity,
    ProfileRepository,
    XpRepository,
)
from wee5_xp.rules import XpConfig

if TYPE_CHECKING:
    from wee5_xp.service import XpService

log = get_logger("wee5.xp.queries")

NO_PROFILE = ProfileFields()
# Analytics cover these many UTC days (today included) unless asked otherwise, and never more
# than MAX_ANALYTICS_WINDOW at once.
DEFAULT_ANALYTICS_DAYS = 30
MAX_ANALYTICS_WINDOW = timedelta(days=366)
TOP_MOVERS = 10
MAX_HISTORY_PAGE = 100
# A name search looks at this many matching members (most XP first): enough to find anyone
# by a name fragment; a fragment matching more is too broad to page through anyway.
MAX_NAMED_MATCHES = 1000
MAX_QUERY_LENGTH = 100
# While a board this large is rebuilt, a rank read from Postgres is estimated instead of
# counted: a count over a million rows costs a read a quarter of a second of a core, which
# many readers at once cannot have. The estimate counts in a sample of the table's pages
# (TABLESAMPLE SYSTEM, the same pages every time) sized to hold some SAMPLED_MEMBERS of the
# board; a sample holding fewer than MIN_SAMPLED of them (a table of many other communities)
# is not trusted and the rank is counted.
APPROXIMATE_FROM = 100_000
SAMPLED_MEMBERS = 20_000
MIN_SAMPLED = 2_000


@dataclass(frozen=True)
class PeriodRank:
    period: str
    start: date
    rank: int
    xp: int


@dataclass(frozen=True)
class RankCard:
    member: Member
    rank: int
    progress: Progress
    periods: list[PeriodRank]
    current_streak: int
    custom_totals: dict[str, int]
    profile: ProfileFields = NO_PROFILE
    # The ranks came from Postgres: a board is being rebuilt in Redis (or Redis is down).
    updating: bool = False
    # A rank was estimated (a large board being rebuilt).
    approximate: bool = False


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    user_id: str
    xp: int
    level: int
    profile: ProfileFields = NO_PROFILE
    # How far the member's total XP is into their level, 0..1.
    progress: float = 0.0
    # False for a hidden member's own entry: ranked as if on the board, but not on its pages.
    on_board: bool = True
    # The rank was estimated (a large board being rebuilt).
    approximate: bool = False


@dataclass(frozen=True)
class Board:
    period: str
    start: date | None
    rows: list[LeaderboardRow]
    # Whether rows follow the page (it was read with one row more than asked for).
    more: bool = False
    # Members on the whole board (not only the page, nor only the name search's matches).
    total: int = 0
    # The first day a past board of this period may be asked for (None for all time).
    earliest: date | None = None
    # Read from Postgres: the board is being rebuilt in Redis (or Redis is down).
    updating: bool = False


@dataclass(frozen=True)
class HistoryPage:
    entries: list[LedgerEntry]
    # The id the next (older) page starts before; None on the last page.
    next_before_id: int | None


@dataclass(frozen=True)
class Analytics:
    days: list[DailyActivity]
    top_movers: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class CommunityAnalytics:
    community_id: str
    days: list[DailyActivity]
    active_members: int


@dataclass(frozen=True)
class CompanyAnalytics:
    # Most XP in the window first.
    communities: list[CommunityAnalytics]
    active_members: int
    members_in_several: int
    # (member, XP gained, in how many communities)
    top_movers: list[tuple[str, int, int]]


def analytics_window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The [since, until) window of an analytics request: until defaults to now, since to the
    start of the UTC day DEFAULT_ANALYTICS_DAYS - 1 days before until's."""
    try:
        until = (until or now).astimezone(UTC)
        if since is None:
            start_of_day = datetime.combine(until.date(), datetime.min.time(), UTC)
            since = start_of_day - timedelta(days=DEFAULT_ANALYTICS_DAYS - 1)
        since = since.astimezone(UTC)
    except OverflowError:
        raise InvalidAnalyticsRequest("since and until must fall in the years 1 to 9999") from None
    if since >= until:
        raise InvalidAnalyticsRequest("since must be before until")
    if until - since > MAX_ANALYTICS_WINDOW:
        raise InvalidAnalyticsRequest(
            f"the window is at most {MAX_ANALYTICS_WINDOW.days} days; ask for it in parts"
        )
    return since, until


def _days(since: datetime, until: datetime) -> list[date]:
    """Every UTC day that [since, until) touches."""
    first = since.date()
    last = (until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class BoardView(Protocol):
    """One board (a community's, for a period): where its ranks are read."""

    async def page(self, offset: int, limit: int) -> list[tuple[str, int]]: ...
    async def rank(self, user_id: str) -> tuple[int, int] | None: ...
    async def ranks(self, user_ids: Sequence[str]) -> list[tuple[int, str, int]]: ...
    async def size(self) -> int: ...
    async def rank_among(self, score: Score) -> int: ...

    @property
    def updating(self) -> bool:
        """Read from Postgres while Redis lacks the board or cannot answer."""
        ...

    @property
    def approximate(self) -> bool:
        """A rank given was estimated (a large board being rebuilt)."""
        ...


@dataclass(frozen=True)
class RedisBoard:
    """The board as Redis keeps it (Leaderboards), the way every read goes."""

    leaderboards: Leaderboards
    key: str

    @property
    def updating(self) -> bool:
        return False

    @property
    def approximate(self) -> bool:
        return False

    async def page(self, offset: int, limit: int) -> list[tuple[str, int]]:
        return await self.leaderboards.page(self.key, offset, limit)

    async def rank(self, user_id: str) -> tuple[int, int] | None:
        return await self.leaderboards.rank(self.key, user_id)

    async def ranks(self, user_ids: Sequence[str]) -> list[tuple[int, str, int]]:
        return await self.leaderboards.ranks(self.key, user_ids)

    async def size(self) -> int:
        return await self.leaderboards.size(self.key)

    async def rank_among(self, score: Score) -> int:
        return await self.leaderboards.rank_among(self.key, score)


@dataclass
class PostgresBoard:
    """The same board computed by Postgres, while Redis lacks it (being rebuilt) or cannot
    answer: a count per rank (`ix_members_community_xp` for all time), slower than Redis and
    the same answers; except that while a board of APPROXIMATE_FROM members or more is
    rebuilt, ranks are estimated from a sample (`approximate` says so once one was) and its
    size, counted once, is reused for SIZE_TTL by every replica."""

    repo: XpRepository
    community_id: str
    period: str
    start: date | None
    # The board being rebuilt (None while Redis cannot answer: everything is counted).
    rebuilding: tuple[Leaderboards, str] | None = None
    approximate: bool = False

    @property
    def updating(self) -> bool:
        return True

    async def page(self, offset: int, limit: int) -> list[tuple[str, int]]:
        return await self.repo.board_page(self.community_id, self.period, self.start, offset, limit)

    async def rank(self, user_id: str) -> tuple[int, int] | None:
        placed = await self.ranks([user_id])
        return (placed[0][0], placed[0][2]) if placed else None

    async def ranks(self, user_ids: Sequence[str]) -> list[tuple[int, str, int]]:
        scores = await self.repo.board_scores(self.community_id, self.period, self.start, user_ids)
        return sorted([(await self.rank_among(score), score.user_id, score.xp) for score in scores])

    async def size(self) -> int:
        if self.rebuilding is None:
            return await self.repo.board_size(self.community_id, self.period, self.start)
        leaderboards, key = self.rebuilding
        try:
            size = await leaderboards.remembered_size(key)
            if size is None:
                size = await self.repo.board_size(self.community_id, self.period, self.start)
                await leaderboards.remember_size(key, size)
        except Exception as error:
            # Redis went away (or came back, its pooled connections stale) since the read
            # began: count, as while it cannot answer.
            if unavailable_dependency(error) != "redis":
                raise
            return await self.repo.board_size(self.community_id, self.period, self.start)
        return size

    async def rank_among(self, score: Score) -> int:
        if self.rebuilding is not None:
            size = await self.size()
            if size >= APPROXIMATE_FROM:
                percent = min(100.0, 100.0 * SAMPLED_MEMBERS / size)
                sampled, ahead = await self.repo.board_rank_sampled(
                    self.community_id, self.period, self.start, score, percent
                )
                if sampled >= MIN_SAMPLED:
                    self.approximate = True
                    return min(size - 1, round(ahead * size / sampled)) + 1
        return await self.repo.board_rank(self.community_id, self.period, self.start, score)


class XpQueries:
    """Reads under the same configs, boards and clock as the writes of `service`."""

    def __init__(self, service: XpService) -> None:
        self.service = service
        self.leaderboards = service.leaderboards

    async def rank_card(self, session: AsyncSession, community_id: str, user_id: str) -> RankCard:
        repo = XpRepository(session)
        member = await repo.get_member(community_id, user_id)
        if member is None:
            raise MemberNotFound(community_id, user_id)
        config = await self.service.config_of(session, community_id)
        board = await self._board(session, community_id, "all", None, config)
        placed = await self._placement(session, member, board)
        views = [board[0]]
        periods = []
        for period in PERIODS:
            view, start = await self._board(session, community_id, period, None, config)
            assert start is not None
            views.append(view)
            in_period = await self._placement(session, member, (view, start), period)
            rank, xp = in_period or (0, 0)
            periods.append(PeriodRank(period, start, rank, xp))
        profiles = await ProfileRepository(session).profiles_of([user_id])
        yesterday = local_day(self.service.clock(), config.zone) - timedelta(days=1)
        streak = member.current_streak
        if member.last_active_day is None or member.last_active_day < yesterday:
            streak = 0  # broken, even before the nightly close-streaks task records it
        return RankCard(
            member,
            placed[0] if placed else 0,
            config.level_curve.progress(member.xp),
            periods,
            streak,
            await repo.custom_totals(community_id, user_id) if member.custom else {},
            profiles.get(user_id, NO_PROFILE),
            updating=any(view.updating for view in views),
            approximate=any(view.approximate for view in views),
        )

    async def _placement(
        self,
        session: AsyncSession,
        member: Member,
        board: tuple[BoardView, date | None],
        period: str = "all",
    ) -> tuple[int, int] | None:
        """(rank, xp) of the member on a board; a hidden member, who is not on it, gets the
        rank they would have among those who are (only they ever see it)."""
        view, start = board
        if not member.hidden_from_leaderboards:
            return await view.rank(member.user_id)
        score: Score | None
        if start is None:
            score = Score(member.user_id, member.xp, member.reached_at) if member.xp > 0 else None
        else:
            score = await XpRepository(session).period_score(
                member.community_id, member.user_id, period, start
            )
        if score is None:
            return None
        return await view.rank_among(score), score.xp

    async def leaderboard(
        self,
        session: AsyncSession,
        community_id: str,
        period: str,
        at: date | None,
        offset: int,
        limit: int,
        query: str = "",
    ) -> Board:
        """A page of the board of `period` containing the day `at` (default: now); with
        `query`, of the members on it whose name contains it, each with their rank on the
        whole board."""
        config = await self.service.config_of(session, community_id)
        earliest = None
        if period != "all":
            earliest = await self._earliest_board_day(session, community_id, period, config)
            if at is not None:
                _check_board_day(period, at, earliest, local_day(self.service.clock(), config.zone))
        view, start = await self._board(session, community_id, period, at, config)
        if query:
            named = await ProfileRepository(session).members_named(
                community_id, query, MAX_NAMED_MATCHES
            )
            placed = await view.ranks(named)
            page, more = take_page(placed[offset : offset + limit + 1], limit)
        else:
            best, more = take_page(await view.page(offset, limit + 1), limit)
            page = [(offset + i + 1, user, xp) for i, (user, xp) in enumerate(best)]
        users = [user for _, user, _ in page]
        levels = await XpRepository(session).levels_of(community_id, users)
        profiles = await ProfileRepository(session).profiles_of(users)
        first = config.level_curve.first_level
        rows = []
        for rank, user, xp in page:
            level, total = levels.get(user, (first, 0))
            rows.append(
                LeaderboardRow(
                    rank,
                    user,
                    xp,
                    level,
                    profiles.get(user, NO_PROFILE),
                    config.level_curve.progress(total).ratio,
                    approximate=view.approximate,  # a name search's ranks
                )
            )
        return Board(period, start, rows, more, await view.size(), earliest, view.updating)

    async def leaderboard_entry(
        self, session: AsyncSession, community_id: str, period: str, at: date | None, user_id: str
    ) -> LeaderboardRow | None:
        """The viewer's own entry on a board (hidden or not: they always see themselves)."""
        member = await XpRepository(session).get_member(community_id, user_id)
        if member is None:
            return None
        config = await self.service.config_of(session, community_id)
        board = await self._board(session, community_id, period, at, config)
        placed = await self._placement(session, member, board, period)
        if placed is None:
            return None
        profiles = await ProfileRepository(session).profiles_of([user_id])
        return LeaderboardRow(
            placed[0],
            user_id,
            placed[1],
            member.level,
            profiles.get(user_id, NO_PROFILE),
            config.level_curve.progress(member.xp).ratio,
            on_board=not member.hidden_from_leaderboards,
            approximate=board[0].approximate,
        )

    async def _earliest_board_day(
        self, session: AsyncSession, community_id: str, period: str, config: XpConfig
    ) -> date:
        """The first day of the period before the one of the community's first XP (of
        today's, before any): the earliest board that can be shown, the empty one a "previous"
        link of the first period leads to."""
        first = await XpRepository(session).first_period_start(community_id, period)
        if first is None:
            first = period_start(period, local_day(self.service.clock(), config.zone))
        return period_start(period, first - timedelta(days=1))

    async def _board(
        self,
        session: AsyncSession,
        community_id: str,
        period: str,
        at: date | None,
        config: XpConfig,
    ) -> tuple[BoardView, date | None]:
        """The board and its start: from Redis once it is whole there; from Postgres while it
        is being rebuilt (a read never waits for that: `Leaderboards.ready` starts the rebuild
        and answers at once) or Redis cannot answer: slower, the same answers."""
        start = (
            None
            if period == "all"
            else period_start(period, at or local_day(self.service.clock(), config.zone))
        )
        key = self.leaderboards.board_key(community_id, period, start)
        repo = XpRepository(session)
        try:
            ready = await self.leaderboards.ready(
                key, period, lambda: self._scores(community_id, period, start)
            )
        except Exception as error:
            if unavailable_dependency(error) != "redis":
                raise
            log.warning("board read from Postgres: Redis unavailable", board=key)
            return PostgresBoard(repo, community_id, period, start), start
        if not ready:
            rebuilding = (self.leaderboards, key)
            return PostgresBoard(repo, community_id, period, start, rebuilding), start
        return RedisBoard(self.leaderboards, key), start

    async def _scores(
        self, community_id: str, period: str = "all", start: date | None = None
    ) -> AsyncIterator[list[Score]]:
        """A board's scores from Postgres, in a session of their own: the rebuild outlives the
        read that started it (Leaderboards.ready)."""
        async with self.service.sessionmaker() as session:
            repo = XpRepository(session)
            chunks = (
                repo.all_time_scores(community_id)
                if start is None
                else repo.period_scores(community_id, period, start)
            )
            async for chunk in chunks:
                yield chunk

    async def history(
        self,
        session: AsyncSession,
        community_id: str,
        user_id: str,
        page_size: int,
        before_id: int | None,
    ) -> HistoryPage:
        """A page of the member's ledger, newest first, and where the next page starts."""
        if not 1 <= page_size <= MAX_HISTORY_PAGE:
            raise InvalidHistoryRequest(f"page_size must be between 1 and {MAX_HISTORY_PAGE}")
        repo = XpRepository(session)
        if await repo.get_member(community_id, user_id) is None:
            raise MemberNotFound(community_id, user_id)
        entries, more = take_page(
            await repo.history(community_id, user_id, before_id, page_size + 1), page_size
        )
        return HistoryPage(entries, entries[-1].id if more else None)

    async def analytics(
        self,
        session: AsyncSession,
        community_id: str,
        since: datetime | None,
        until: datetime | None,
    ) -> Analytics:
        """One entry per UTC day of the window, oldest first (days without activity are
        zeros), and the members who gained the most XP in it."""
        if not community_id:
            raise InvalidAnalyticsRequest("community_id is required")
        since, until = analytics_window(since, until, self.service.clock())
        repo = AnalyticsRepository(session)
        rows = await repo.daily_activity(community_id, since, until)
        found = {row.day: row for row in rows}
        days = [found.get(day, DailyActivity(day, 0, 0, 0, {})) for day in _days(since, until)]
        movers = await repo.top_movers(community_id, since, until, TOP_MOVERS)
        return Analytics(days, movers)

    async def company_analytics(
        self,
        session: AsyncSession,
        company_id: str,
        since: datetime | None,
        until: datetime | None,
    ) -> CompanyAnalytics:
        """Each community of the company as `analytics` gives it, with the members who earned
        in it; and across them: members who earned (each once), those who earned in several,
        and who gained most in all of them together."""
        if not company_id:
            raise InvalidAnalyticsRequest("company_id is required")
        since, until = analytics_window(since, until, self.service.clock())
        repo = AnalyticsRepository(session)
        community_ids = await repo.company_communities(company_id)
        if not community_ids:
            return CompanyAnalytics([], 0, 0, [])
        seen: dict[str, set[str]] = {community_id: set() for community_id in community_ids}
        for community_id, user_id in await repo.active_members(community_ids, since, until):
            seen[community_id].add(user_id)
        window = _days(since, until)
        per_community = []
        for community_id in community_ids:
            found = {row.day: row for row in await repo.daily_activity(community_id, since, until)}
            days = [found.get(day, DailyActivity(day, 0, 0, 0, {})) for day in window]
            per_community.append(CommunityAnalytics(community_id, days, len(seen[community_id])))
        per_community.sort(key=lambda c: (-sum(day.xp for day in c.days), c.community_id))
        in_communities: dict[str, int] = {}
        for users in seen.values():
            for user_id in users:
                in_communities[user_id] = in_communities.get(user_id, 0) + 1
        return CompanyAnalytics(
            per_community,
            active_members=len(in_communities),
            members_in_several=sum(1 for n in in_communities.values() if n > 1),
            top_movers=await repo.movers_across(community_ids, since, until, TOP_MOVERS),
        )


def _check_board_day(period: str, at: date, earliest: date, today: date) -> None:
    """A past board is shown only from `earliest` to today: each other day asked for would
    load (and keep) one more board in Redis, and there are millions of days to ask for."""
    if at > today:
        raise InvalidLeaderboardRequest(
            f"at must not be after today ({today.isoformat()} in the community's time zone)"
        )
    if period_start(period, at) < earliest:
        raise InvalidLeaderboardRequest(
            f"at must not be before {earliest.isoformat()}: the community has no XP before it"
        )
