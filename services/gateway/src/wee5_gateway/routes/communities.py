"""A community's leaderboard and its members' rank cards, served by xp."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2
from wee5_gateway.access import Action, Principal, authorize
from wee5_gateway.clients import Downstream
from wee5_gateway.problems import problem_responses

Period = Literal["all", "month", "week", "day"]
MAX_LEADERBOARD_PAGE = 100

_PERIOD_NAMES = {
    xp_pb2.PERIOD_DAY: "day",
    xp_pb2.PERIOD_WEEK: "week",
    xp_pb2.PERIOD_MONTH: "month",
}
_PERIODS: dict[str, xp_pb2.Period.ValueType] = {
    "all": xp_pb2.PERIOD_ALL,
    "month": xp_pb2.PERIOD_MONTH,
    "week": xp_pb2.PERIOD_WEEK,
    "day": xp_pb2.PERIOD_DAY,
}


class LeaderboardEntry(msgspec.Struct):
    rank: int
    user_id: str
    xp: int
    level: int


class Leaderboard(msgspec.Struct):
    community_id: str
    period: str
    # First day of the period shown (community time zone); null for all time.
    period_start: date | None
    entries: list[LeaderboardEntry]
    # Pass back as `cursor` for the next page; null on the last page.
    next_cursor: str | None
    # The caller's own entry, when their account is linked to a member of this community
    # and they are on this board; null otherwise.
    me: LeaderboardEntry | None = None


class ActivityTotals(msgspec.Struct):
    messages: int
    posts: int
    reactions: int
    custom: int


class PeriodStanding(msgspec.Struct):
    period_start: date
    rank: int
    xp: int


class MemberCard(msgspec.Struct):
    """What a rank card shows."""

    community_id: str
    user_id: str
    xp: int
    level: int
    # 1-based all-time rank; 0 while the member is not on the board.
    rank: int
    xp_into_level: int
    xp_for_next_level: int
    # xp_into_level / xp_for_next_level, 0..1.
    progress: float
    totals: ActivityTotals
    # Consecutive active days up to today or yesterday (community time zone); 0 once broken.
    streak_days: int
    badges: list[str]
    longest_streak_days: int = 0
    last_activity_at: datetime | None = None
    # Rank (0: not on the board) and XP in the current day, week and month.
    periods: dict[str, PeriodStanding] = msgspec.field(default_factory=dict)
    # Awarded activities per custom kind name.
    custom_totals: dict[str, int] = msgspec.field(default_factory=dict)


class HistoryEntry(msgspec.Struct):
    id: int
    # XP added (negative for a correction).
    delta: int
    # "message", "custom:intro", "benchmark_submitted", "adjustment:<why>", …
    reason: str
    # "whop", "api", "discord", "admin", "benchmarks", …
    source: str
    balance_after: int
    level_after: int
    created_at: datetime


class History(msgspec.Struct):
    community_id: str
    user_id: str
    entries: list[HistoryEntry]
    # Pass back as `cursor` for older entries; null on the last page.
    next_cursor: str | None


class CommunityController(Controller):
    path = "/api/v1/communities/{community_id:str}"
    tags = ["communities"]

    @get(
        "/leaderboard",
        summary="Ranked members of a community for a period",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def leaderboard(
        self,
        community_id: FromPath[str],
        downstream: NamedDependency[Downstream],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]],
        period: FromQuery[Period] = "all",
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LEADERBOARD_PAGE)] = 25,
        cursor: FromQuery[str | None] = None,
        at: Annotated[
            date | None,
            QueryParameter(
                description="A day inside a past period to show (e.g. last week's winners); "
                "default: the current period"
            ),
        ] = None,
    ) -> Leaderboard:
        access = await authorize(principal, community_id, Action.READ_COMMUNITY, sessionmaker)
        reply = await downstream.xp.GetLeaderboard(
            xp_pb2.GetLeaderboardRequest(
                community_id=community_id,
                period=_PERIODS[period],
                limit=limit,
                cursor=cursor or "",
                viewer_user_id=access.member_user_id or "",
                at=at.isoformat() if at else "",
            )
        )
        me = reply.viewer if reply.HasField("viewer") else None
        return Leaderboard(
            community_id=community_id,
            period=period,
            period_start=date.fromisoformat(reply.period_start) if reply.period_start else None,
            entries=[
                LeaderboardEntry(rank=e.rank, user_id=e.user_id, xp=e.xp, level=e.level)
                for e in reply.entries
            ],
            next_cursor=reply.next_cursor or None,
            me=LeaderboardEntry(rank=me.rank, user_id=me.user_id, xp=me.xp, level=me.level)
            if me is not None
            else None,
        )

    @get(
        "/members/{user_id:str}",
        summary="Rank card of one member",
        responses=problem_responses(401, 403, 404, 503, 504),
    )
    async def member(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        downstream: NamedDependency[Downstream],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]],
    ) -> MemberCard:
        await authorize(principal, community_id, Action.READ_COMMUNITY, sessionmaker)
        reply = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
        )
        m = reply.member
        return MemberCard(
            community_id=m.community_id,
            user_id=m.user_id,
            xp=m.xp,
            level=m.level,
            rank=m.rank,
            xp_into_level=m.xp_into_level,
            xp_for_next_level=m.xp_for_next_level,
            progress=m.progress,
            totals=ActivityTotals(
                messages=m.totals.messages,
                posts=m.totals.posts,
                reactions=m.totals.reactions,
                custom=m.totals.custom,
            ),
            streak_days=m.streak_days,
            badges=list(m.badges),
            longest_streak_days=m.longest_streak_days,
            last_activity_at=m.last_activity_at.ToDatetime(tzinfo=UTC)
            if m.HasField("last_activity_at")
            else None,
            periods={
                _PERIOD_NAMES[p.period]: PeriodStanding(
                    period_start=date.fromisoformat(p.period_start), rank=p.rank, xp=p.xp
                )
                for p in m.periods
            },
            custom_totals=dict(m.custom_totals),
        )

    @get(
        "/members/{user_id:str}/history",
        operation_id="getMemberHistory",
        summary="A member's XP ledger, newest first",
        responses=problem_responses(400, 401, 403, 404, 503, 504),
    )
    async def history(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        downstream: NamedDependency[Downstream],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[async_sessionmaker[AsyncSession]],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LEADERBOARD_PAGE)] = 25,
        cursor: FromQuery[str | None] = None,
    ) -> History:
        await authorize(principal, community_id, Action.READ_COMMUNITY, sessionmaker)
        reply = await downstream.xp.GetHistory(
            xp_pb2.GetHistoryRequest(
                community_id=community_id,
                user_id=user_id,
                page_size=limit,
                page_token=cursor or "",
            )
        )
        return History(
            community_id=community_id,
            user_id=user_id,
            entries=[
                HistoryEntry(
                    id=e.id,
                    delta=e.delta,
                    reason=e.reason,
                    source=e.source_name,
                    balance_after=e.balance_after,
                    level_after=e.level_after,
                    created_at=e.created_at.ToDatetime(tzinfo=UTC),
                )
                for e in reply.entries
            ],
            next_cursor=reply.next_page_token or None,
        )
