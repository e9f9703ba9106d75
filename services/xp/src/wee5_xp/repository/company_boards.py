"""SQL of company boards: members ranked across the communities of one company (a Whop
company `biz_…`) that opted in, by the sum of their XP there (a member is the same user id
across the company's communities).

A company board has no table of its own: its scores are summed from `members` (all time) and
`period_xp` (a period: the rows of the communities' periods starting that day), so they always
equal what the community boards hold. One query shape (`_board`) serves every use — the award
path's new totals, the rebuild into Redis, the Postgres fallback — so they agree exactly:
score = sum of XP, reached at = the latest reach time among the rows summed (when the sum last
changed). A member hidden from the boards in any opted-in community of the company is left off
its board (they asked not to be ranked).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Select, Table, and_, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.communities import GROUP_PREFIX
from wee5_xp.leaderboards import Score
from wee5_xp.locks import xp_lock
from wee5_xp.models import Community, Member, PeriodXp
from wee5_xp.repository.members import (
    SCORES_PER_CHUNK,
    board_page,
    board_rank,
    board_scores,
    board_size,
)

members = cast(Table, Member.__table__)
period_xp = cast(Table, PeriodXp.__table__)
communities = cast(Table, Community.__table__)


@dataclass(frozen=True)
class CommunityXp:
    """A member's standing in one community of the company (the card's breakdown)."""

    community_id: str
    xp: int
    level: int
    in_company_board: bool
    hidden: bool


@dataclass(frozen=True)
class CompanyCommunity:
    community_id: str
    in_company_board: bool


class CompanyBoardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the company and its communities ----------------------------------------------------

    async def communities(self, company_id: str) -> list[CompanyCommunity]:
        """Every community xp knows of the company, whether it counts on the board or not."""
        rows = await self.session.execute(
            select(communities.c.community_id, communities.c.in_company_board)
            .where(communities.c.company_id == company_id)
            .order_by(communities.c.community_id)
        )
        return [CompanyCommunity(row.community_id, row.in_company_board) for row in rows]

    async def company_of(self, community_id: str) -> tuple[str, bool] | None:
        """(company, whether the community counts on its board), None when xp has not learned
        the community's company (or it left its group)."""
        row = (
            await self.session.execute(
                select(communities.c.company_id, communities.c.in_company_board).where(
                    communities.c.community_id == community_id, communities.c.company_id != ""
                )
            )
        ).first()
        return (row.company_id, row.in_company_board) if row else None

    async def lock_company_of(self, community_id: str) -> str | None:
        """The community's company ('' when it left its group), its row locked until the
        transaction ends; None when xp has no row of it."""
        company_id: str | None = await self.session.scalar(
            select(communities.c.company_id)
            .where(communities.c.community_id == community_id)
            .with_for_update()
        )
        return company_id

    async def save_group(self, community_id: str, group_id: str, changed_at: datetime) -> bool:
        """Makes the WEE5 group (`''`: none) the community's company, unless the community
        belongs to a Whop company (Whop wins) or a group change as new or newer is stored; True
        if stored. A community that changes company counts on the new one's board only once an
        admin opts in again."""
        statement = insert(communities).values(
            community_id=community_id, company_id=group_id, group_changed_at=changed_at
        )
        new = statement.excluded
        upsert = statement.on_conflict_do_update(
            index_elements=[communities.c.community_id],
            set_={
                "company_id": new.company_id,
                "group_changed_at": new.group_changed_at,
                "in_company_board": and_(
                    communities.c.in_company_board, communities.c.company_id == new.company_id
                ),
                "updated_at": func.now(),
            },
            where=and_(
                or_(
                    communities.c.company_id == "",
                    communities.c.company_id.startswith(GROUP_PREFIX, autoescape=True),
                ),
                or_(
                    communities.c.group_changed_at.is_(None),
                    communities.c.group_changed_at < new.group_changed_at,
                ),
            ),
        ).returning(communities.c.community_id)
        return (await self.session.execute(upsert)).first() is not None

    async def set_in_company_board(self, community_id: str, value: bool) -> None:
        await self.session.execute(
            update(communities)
            .where(communities.c.community_id == community_id)
            .values(in_company_board=value, updated_at=func.now())
        )

    async def companies_on_boards(self) -> list[str]:
        """Every company with a community that counts on its board."""
        rows = await self.session.scalars(
            select(communities.c.company_id)
            .distinct()
            .where(communities.c.in_company_board)
            .order_by(communities.c.company_id)
        )
        return list(rows)

    async def lock_members(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Holds (company, user) until the transaction ends, in sorted order: two awards of one
        member in two communities of a company sum one after the other, each seeing the other's
        committed XP, instead of both missing it."""
        keys = sorted({xp_lock("company-member", company, user) for company, user in pairs})
        if not keys:
            return
        # One statement: the locks are taken in the array's (sorted) order.
        held = func.unnest(literal(keys, ARRAY(BigInteger))).table_valued("key").render_derived()
        await self.session.execute(select(func.pg_advisory_xact_lock(held.c.key)))

    # --- scores ---------------------------------------------------------------------------

    def _board(self, company_id: str, period: str, start: date | None) -> Any:
        """The board's (user_id, xp, reached_at) as a subquery."""
        opted = select(communities.c.community_id).where(
            communities.c.company_id == company_id, communities.c.in_company_board
        )
        hidden = exists().where(
            members.c.community_id.in_(opted),
            members.c.hidden_from_leaderboards,
        )
        if start is None:
            query = (
                select(
                    members.c.user_id,
                    func.sum(members.c.xp).label("xp"),
                    func.max(members.c.reached_at).label("reached_at"),
                )
                .where(members.c.community_id.in_(opted))
                .group_by(members.c.user_id)
                .having(func.sum(members.c.xp) > 0)
                .having(~func.bool_or(members.c.hidden_from_leaderboards))
            )
            return query.subquery("board")
        hidden_here = hidden.where(members.c.user_id == period_xp.c.user_id)
        query = (
            select(
                period_xp.c.user_id,
                func.sum(period_xp.c.xp).label("xp"),
                func.max(period_xp.c.reached_at).label("reached_at"),
            )
            .where(
                period_xp.c.community_id.in_(opted),
                period_xp.c.period == period,
                period_xp.c.period_start == start,
                ~hidden_here,
            )
            .group_by(period_xp.c.user_id)
            .having(func.sum(period_xp.c.xp) > 0)
        )
        return query.subquery("board")

    async def scores(
        self, company_id: str, period: str, start: date | None, user_ids: Sequence[str]
    ) -> list[Score]:
        """The scores of those of `user_ids` on the board (the award path's new totals)."""
        return await board_scores(self.session, self._board(company_id, period, start), user_ids)

    async def all_scores(
        self, company_id: str, period: str, start: date | None
    ) -> AsyncIterator[list[Score]]:
        """The whole board, a chunk at a time, in user order (to be loaded into Redis)."""
        board = self._board(company_id, period, start)
        query: Select[Any] = select(board.c.user_id, board.c.xp, board.c.reached_at).order_by(
            board.c.user_id
        )
        result = await self.session.stream(query.execution_options(yield_per=SCORES_PER_CHUNK))
        async for rows in result.partitions():
            yield [Score(row.user_id, int(row.xp), row.reached_at) for row in rows]

    # The board read from Postgres while Redis rebuilds it or cannot answer (as a community's).

    async def page(
        self, company_id: str, period: str, start: date | None, offset: int, limit: int
    ) -> list[tuple[str, int]]:
        return await board_page(self.session, self._board(company_id, period, start), offset, limit)

    async def size(self, company_id: str, period: str, start: date | None) -> int:
        return await board_size(self.session, self._board(company_id, period, start))

    async def rank(self, company_id: str, period: str, start: date | None, score: Score) -> int:
        """The 1-based rank `score` has on the board: 1 + those ahead."""
        return await board_rank(self.session, self._board(company_id, period, start), score)

    async def recent_periods(
        self, company_id: str, since: dict[str, date]
    ) -> list[tuple[str, date]]:
        """The (period, start) with XP in the company's opted-in communities that began on or
        after since[period]."""
        opted = select(communities.c.community_id).where(
            communities.c.company_id == company_id, communities.c.in_company_board
        )
        rows = await self.session.execute(
            select(period_xp.c.period, period_xp.c.period_start)
            .distinct()
            .where(
                period_xp.c.community_id.in_(opted),
                or_(
                    *(
                        and_(period_xp.c.period == period, period_xp.c.period_start >= start)
                        for period, start in since.items()
                    )
                ),
            )
        )
        return [(row.period, row.period_start) for row in rows]

    # --- the member's card ------------------------------------------------------------------

    async def breakdown(self, company_id: str, user_id: str) -> list[CommunityXp]:
        """The member in each community of the company xp knows them in."""
        rows = await self.session.execute(
            select(
                members.c.community_id,
                members.c.xp,
                members.c.level,
                members.c.hidden_from_leaderboards,
                communities.c.in_company_board,
            )
            .join(communities, communities.c.community_id == members.c.community_id)
            .where(communities.c.company_id == company_id, members.c.user_id == user_id)
            .order_by(members.c.xp.desc(), members.c.community_id)
        )
        return [
            CommunityXp(
                row.community_id,
                int(row.xp),
                row.level,
                row.in_company_board,
                row.hidden_from_leaderboards,
            )
            for row in rows
        ]
