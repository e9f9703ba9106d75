"""Company boards: a company's members ranked across the communities of it that opted in, by
their summed XP, per period like the community boards (issue 20).

They live in Redis beside the community boards (`Leaderboards.company_key`), written by the
award path in the same pipeline as the community boards (`service._company_scores`), rebuilt
from Postgres when missing (reads go to Postgres meanwhile, `updating`) and by reconcile. A
company board's periods are the communities' own period rows summed by their start date; its
current period is the one of today in UTC.

Which communities count is each community's choice (`in_company_board`, off until one of its
admins turns it on); a change drops the company's boards, which load again from Postgres.

A community's company is its Whop company (learned from webhook envelopes) or, outside Whop,
the WEE5 group billing says it is in (`billing.community_group`, `set_group`). A group never
replaces a Whop company; a community joining or leaving a group drops the boards of both
companies at once (the community's XP leaves the old board on its next read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.communities import is_community_id, is_group_id, validate_community_id
from wee5_kit.logging import get_logger
from wee5_kit.outages import unavailable_dependency
from wee5_kit.pagination import take_page
from wee5_kit.uow import UnitOfWork
from wee5_xp.errors import CompanyMemberNotFound, CompanyNotKnown
from wee5_xp.leaderboards import PERIODS, Score, period_start
from wee5_xp.profiles import ProfileFields
from wee5_xp.queries import NO_PROFILE, BoardView, RedisBoard
from wee5_xp.repository import (
    CommunityXp,
    CompanyBoardRepository,
    CompanyCommunity,
    ProfileRepository,
)
from wee5_xp.service import XpService

log = get_logger("wee5.xp.companies")


@dataclass(frozen=True)
class CompanyBoardSetting:
    community_id: str
    company_id: str
    in_company_board: bool
    changed: bool


@dataclass(frozen=True)
class CompanyRow:
    rank: int
    user_id: str
    xp: int
    profile: ProfileFields = NO_PROFILE


@dataclass(frozen=True)
class CompanyBoard:
    company_id: str
    period: str
    start: date | None
    rows: list[CompanyRow]
    more: bool
    total: int
    updating: bool


@dataclass(frozen=True)
class CompanyPeriodRank:
    period: str
    start: date
    rank: int
    xp: int


@dataclass(frozen=True)
class CompanyCard:
    company_id: str
    user_id: str
    xp: int
    # 0 when the member is not on the board (hidden in one of the communities).
    rank: int
    periods: list[CompanyPeriodRank]
    # Every community of the company the member has a record in, counted or not.
    communities: list[CommunityXp]
    profile: ProfileFields = NO_PROFILE
    updating: bool = False


@dataclass
class PostgresCompanyBoard:
    """The company board computed by Postgres while Redis lacks it or cannot answer: the same
    answers, slower (company boards are the sum of a few communities' boards, counted)."""

    repo: CompanyBoardRepository
    company_id: str
    period: str
    start: date | None

    @property
    def updating(self) -> bool:
        return True

    @property
    def approximate(self) -> bool:
        return False

    async def page(self, offset: int, limit: int) -> list[tuple[str, int]]:
        return await self.repo.page(self.company_id, self.period, self.start, offset, limit)

    async def rank(self, user_id: str) -> tuple[int, int] | None:
        placed = await self.ranks([user_id])
        return (placed[0][0], placed[0][2]) if placed else None

    async def ranks(self, user_ids: Sequence[str]) -> list[tuple[int, str, int]]:
        scores = await self.repo.scores(self.company_id, self.period, self.start, user_ids)
        return sorted([(await self.rank_among(score), score.user_id, score.xp) for score in scores])

    async def size(self) -> int:
        return await self.repo.size(self.company_id, self.period, self.start)

    async def rank_among(self, score: Score) -> int:
        return await self.repo.rank(self.company_id, self.period, self.start, score)


class CompanyBoards:
    """The company boards' reads and the communities' opt-in, under the service's boards,
    sessions and clock."""

    def __init__(self, service: XpService) -> None:
        self.service = service
        self.leaderboards = service.leaderboards

    # --- the setting ------------------------------------------------------------------------

    async def setting(self, session: AsyncSession, community_id: str) -> CompanyBoardSetting:
        validate_community_id(community_id)
        known = await CompanyBoardRepository(session).company_of(community_id)
        if known is None:
            raise CompanyNotKnown(community_id)
        return CompanyBoardSetting(community_id, known[0], known[1], False)

    async def set_in_company_board(
        self, session: AsyncSession, community_id: str, value: bool
    ) -> CompanyBoardSetting:
        """Counts the community on its company's board, or stops counting it. The company's
        boards are dropped once committed and load again from Postgres."""
        before = await self.setting(session, community_id)
        if before.in_company_board == value:
            return before
        await CompanyBoardRepository(session).set_in_company_board(community_id, value)
        self._forget_on_commit(session, before.company_id)
        return CompanyBoardSetting(community_id, before.company_id, value, True)

    async def set_group(
        self, session: AsyncSession, community_id: str, group_id: str, changed_at: datetime
    ) -> bool:
        """Billing's word that the community is in the WEE5 group now ('' : in none since
        `changed_at`); True if xp's company of the community follows it. Ignored for a
        community of a Whop company and when a newer group change is applied."""
        if not is_community_id(community_id) or (
            group_id and not (is_community_id(group_id) and is_group_id(group_id))
        ):
            log.warning("billing named an invalid community or group", group_id=group_id[:64])
            return False
        repo = CompanyBoardRepository(session)
        before = await repo.lock_company_of(community_id)
        if not await repo.save_group(community_id, group_id, changed_at):
            log.info(
                "group change ignored: a Whop company or a newer change",
                community_id=community_id,
                group_id=group_id,
            )
            return False
        if before != group_id:
            for company_id in {before or "", group_id} - {""}:
                self._forget_on_commit(session, company_id)
        return True

    def _forget_on_commit(self, session: AsyncSession, company_id: str) -> None:
        UnitOfWork.of(session).on_commit(lambda: self.forget(company_id))

    async def forget(self, company_id: str) -> None:
        await self.service.forget_company_boards(company_id)

    async def communities(self, session: AsyncSession, company_id: str) -> list[CompanyCommunity]:
        return await CompanyBoardRepository(session).communities(company_id)

    # --- reads ------------------------------------------------------------------------------

    def today(self) -> date:
        return company_today(self.service.clock())

    async def board(
        self, session: AsyncSession, company_id: str, period: str, offset: int, limit: int
    ) -> CompanyBoard:
        """A page of the company's board of the current `period` (UTC)."""
        view, start = await self._view(session, company_id, period)
        best, more = take_page(await view.page(offset, limit + 1), limit)
        users = [user for user, _ in best]
        profiles = await ProfileRepository(session).profiles_of(users)
        rows = [
            CompanyRow(offset + i + 1, user, xp, profiles.get(user, NO_PROFILE))
            for i, (user, xp) in enumerate(best)
        ]
        return CompanyBoard(company_id, period, start, rows, more, await view.size(), view.updating)

    async def card(self, session: AsyncSession, company_id: str, user_id: str) -> CompanyCard:
        """The member's company total, ranks and XP in each of the company's communities."""
        breakdown = await CompanyBoardRepository(session).breakdown(company_id, user_id)
        if not any(part.in_company_board for part in breakdown):
            raise CompanyMemberNotFound(company_id, user_id)
        counted = [part for part in breakdown if part.in_company_board]
        view, _ = await self._view(session, company_id, "all")
        placed = await view.rank(user_id)
        views = [view]
        periods = []
        for period in PERIODS:
            period_view, start = await self._view(session, company_id, period)
            assert start is not None
            views.append(period_view)
            rank, xp = await period_view.rank(user_id) or (0, 0)
            periods.append(CompanyPeriodRank(period, start, rank, xp))
        profiles = await ProfileRepository(session).profiles_of([user_id])
        return CompanyCard(
            company_id,
            user_id,
            sum(part.xp for part in counted),
            placed[0] if placed else 0,
            periods,
            breakdown,
            profiles.get(user_id, NO_PROFILE),
            updating=any(v.updating for v in views),
        )

    async def _view(
        self, session: AsyncSession, company_id: str, period: str
    ) -> tuple[BoardView, date | None]:
        """The board from Redis once whole there; from Postgres while it is rebuilt in the
        background (`Leaderboards.ready`) or Redis cannot answer."""
        start = None if period == "all" else period_start(period, self.today())
        key = self.leaderboards.company_key(company_id, period, start)
        repo = CompanyBoardRepository(session)
        try:
            ready = await self.leaderboards.ready(
                key, period, lambda: self.scores(company_id, period, start)
            )
        except Exception as error:
            if unavailable_dependency(error) != "redis":
                raise
            log.warning("company board read from Postgres: Redis unavailable", board=key)
            return PostgresCompanyBoard(repo, company_id, period, start), start
        if not ready:
            return PostgresCompanyBoard(repo, company_id, period, start), start
        return RedisBoard(self.leaderboards, key), start

    async def scores(
        self, company_id: str, period: str, start: date | None
    ) -> AsyncIterator[list[Score]]:
        """A company board's scores from Postgres, in a session of their own (the rebuild
        outlives the read that started it)."""
        async with self.service.sessionmaker() as session:
            async for chunk in CompanyBoardRepository(session).all_scores(
                company_id, period, start
            ):
                yield chunk


def company_today(now: datetime) -> date:
    """The UTC day whose periods are a company board's current ones."""
    return now.astimezone(UTC).date()
