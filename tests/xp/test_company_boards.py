"""Company boards inside xp: concurrent awards of one member in two communities of a company
sum to the right total in Redis, a member hidden in one community leaves the company board,
and a board read while Redis lacks it comes from Postgres the same."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from tests.xp.conftest import MakeServicer
from wee5.xp.v1 import xp_pb2
from wee5_xp.awards import ActivityInput
from wee5_xp.servicer import XpServicer


async def _company(xp: XpServicer, *opted_in: bool) -> tuple[str, list[str]]:
    """A company with a community per flag, each opted in (or not) as the flag says."""
    tag = uuid.uuid4().hex[:8]
    company_id, communities = f"biz_{tag}", [f"exp_{tag}_{n}" for n in range(len(opted_in))]
    for community_id, opted in zip(communities, opted_in, strict=True):
        async with xp.service.transaction() as session:
            await xp.memberships.learn_company(session, community_id, company_id)
        async with xp.service.transaction() as session:
            await xp.companies.set_in_company_board(session, community_id, opted)
    return company_id, communities


async def _message(xp: XpServicer, community_id: str, user_id: str) -> None:
    async with xp.service.transaction() as session:
        await xp.service.record_activity(
            session,
            ActivityInput(
                community_id=community_id,
                user_id=user_id,
                kind="message",
                source="whop",
                idempotency_key=f"evt_{uuid.uuid4().hex}",
            ),
        )


async def _board(xp: XpServicer, company_id: str) -> xp_pb2.GetCompanyLeaderboardResponse:
    request = xp_pb2.GetCompanyLeaderboardRequest(company_id=company_id, limit=100)
    return await xp.GetCompanyLeaderboard(request, None)  # type: ignore[arg-type]


def _entries(reply: xp_pb2.GetCompanyLeaderboardResponse) -> list[tuple[int, str, int]]:
    return [(e.rank, e.user_id, e.xp) for e in reply.entries]


async def _whole(xp: XpServicer, company_id: str) -> xp_pb2.GetCompanyLeaderboardResponse:
    """The board once it is whole in Redis (the first read starts its load)."""
    reply = await _board(xp, company_id)
    while reply.updating:
        await xp.service.leaderboards.settled()
        reply = await _board(xp, company_id)
    return reply


async def test_concurrent_awards_in_two_communities_sum_in_redis(
    make_xp: MakeServicer, redis: Redis
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    company_id, (first, second) = await _company(xp, True, True)
    await _message(xp, first, "user_a")
    await _whole(xp, company_id)  # from here on, only the award path writes the board

    await asyncio.gather(
        *(_message(xp, community, "user_a") for _ in range(40) for community in (first, second))
    )

    reply = await _board(xp, company_id)
    assert not reply.updating
    assert _entries(reply) == [(1, "user_a", 20 * 81)]


async def test_a_member_hidden_in_one_community_leaves_the_company_board(
    make_xp: MakeServicer,
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    company_id, (first, second, third) = await _company(xp, True, True, False)
    for community_id, user_id in ((first, "user_a"), (second, "user_a"), (first, "user_b")):
        await _message(xp, community_id, user_id)
    await _message(xp, third, "user_c")  # not counted
    assert _entries(await _whole(xp, company_id)) == [(1, "user_a", 40), (2, "user_b", 20)]

    async with xp.service.transaction() as session:
        await xp.service.set_privacy(session, second, "user_a", True)

    reply = await _board(xp, company_id)
    # Dropped from Redis by the change, read from Postgres meanwhile: the same answer.
    assert reply.updating
    assert _entries(reply) == [(1, "user_b", 20)]
    assert _entries(await _whole(xp, company_id)) == [(1, "user_b", 20)]
