"""The member-facing reads of xp, shared by the JSON routes and the pages: a page of a
leaderboard (with the caller's own entry) and a rank card (hidden members shown only to
themselves and admins), each shared by the readers of the same second (api/xp/boards.py),
and a member's XP history."""

from __future__ import annotations

from datetime import date

import grpc

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.rewards.cards import card_badges
from wee5_gateway.api.xp import mappers
from wee5_gateway.api.xp.boards import PublicBoards
from wee5_gateway.api.xp.schemas import History, Leaderboard, MemberCard, Period
from wee5_gateway.core.access import Access, Role
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.problems import NotFoundProblem


async def read_leaderboard(
    downstream: Downstream,
    access: Access,
    boards: PublicBoards,
    period: Period = "all",
    *,
    limit: int = 25,
    cursor: str | None = None,
    at: date | None = None,
    search: str | None = None,
) -> Leaderboard:
    """A page of the community's board for `period` (the one containing the day `at`, or the
    current one), only members whose name contains `search` when given; with the caller's own
    entry when they are a member on it."""
    community_id = access.community_id
    query = (search or "").strip()

    async def read() -> Leaderboard:
        reply = await downstream.xp.GetLeaderboard(
            xp_pb2.GetLeaderboardRequest(
                community_id=community_id,
                period=mappers.PERIODS.value(period),
                limit=limit,
                cursor=cursor or "",
                viewer_user_id=access.member_user_id or "",
                at=at.isoformat() if at else "",
                query=query,
            )
        )
        return mappers.leaderboard(community_id, period, reply)

    viewer = access.member_user_id or ""
    changes = boards.changes(community_id)
    return await boards.pages.get(
        (community_id, changes, period, limit, cursor, at, query, viewer), read
    )


async def read_card(
    downstream: Downstream, access: Access, boards: PublicBoards, user_id: str
) -> MemberCard:
    """The member's rank card with their badges. A member hidden from the boards is not found
    by others (their card says no more than the board does); xp's NOT_FOUND (no XP yet)
    passes through."""
    community_id = access.community_id

    async def read() -> MemberCard:
        reply = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
        )
        badges = await card_badges(downstream, community_id, user_id)
        return mappers.member_card(reply.member, badges)

    card = await boards.cards.get((community_id, boards.changes(community_id), user_id), read)
    if card.hidden_from_leaderboards and not sees_hidden(access, user_id):
        raise NotFoundProblem(f"member {user_id} has no XP in community {community_id}")
    return card


def sees_hidden(access: Access, user_id: str) -> bool:
    """The hidden member themselves and the community's admins."""
    return access.member_user_id == user_id or (
        access.role is not None and access.role >= Role.ADMIN
    )


async def read_history(
    downstream: Downstream, community_id: str, user_id: str, limit: int, cursor: str | None
) -> History:
    """The member's XP ledger, newest first."""
    reply = await downstream.xp.GetHistory(
        xp_pb2.GetHistoryRequest(
            community_id=community_id, user_id=user_id, page_size=limit, page_token=cursor or ""
        )
    )
    return mappers.history(community_id, user_id, reply)


async def member_standing(
    downstream: Downstream, community_id: str, user_id: str
) -> dict[str, int]:
    """The member's XP and level now; a member xp does not know yet has no XP and the first
    level of the community's curve."""
    try:
        reply = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        config = await downstream.xp.GetXpConfig(
            xp_pb2.GetXpConfigRequest(community_id=community_id)
        )
        return {"xp": 0, "level": config.config.level_curve.first_level}
    return {"xp": reply.member.xp, "level": reply.member.level}
