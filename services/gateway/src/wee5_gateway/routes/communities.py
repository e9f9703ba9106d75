"""A community's leaderboard and its members' rank cards, served by xp."""

from __future__ import annotations

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
from wee5_gateway.rewards.cards import card_badges
from wee5_gateway.rewards.schemas import CardBadge

Period = Literal["all", "month", "week", "day"]
MAX_LEADERBOARD_PAGE = 100

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
    streak_days: int
    badges: list[CardBadge]


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
    ) -> Leaderboard:
        access = await authorize(principal, community_id, Action.READ_COMMUNITY, sessionmaker)
        reply = await downstream.xp.GetLeaderboard(
            xp_pb2.GetLeaderboardRequest(
                community_id=community_id,
                period=_PERIODS[period],
                limit=limit,
                cursor=cursor or "",
                viewer_user_id=access.member_user_id or "",
            )
        )
        me = reply.viewer if reply.HasField("viewer") else None
        return Leaderboard(
            community_id=community_id,
            period=period,
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
            badges=await card_badges(downstream, community_id, user_id),
        )
