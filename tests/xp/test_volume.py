"""Exactly-once under load, through the real gRPC server and its group commit: ten thousand
activities, each delivered three times, concurrently and shuffled."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.conftest import activity, set_config
from wee5.xp.v1 import xp_pb2
from wee5_xp.models import Activity, LedgerEntry, Member, PeriodXp

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Xp

EVENTS = 10_000
MEMBERS = 250
CONCURRENCY = 64


async def test_ten_thousand_events_delivered_three_times_count_exactly_once(
    xp_rpc: Xp, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    await set_config(xp_rpc, community_id, cooldown_seconds=0)
    kinds = [xp_pb2.ACTIVITY_KIND_MESSAGE, xp_pb2.ACTIVITY_KIND_REACTION]
    events = [
        activity(community_id, f"user_{n % MEMBERS}", kinds[n % 7 == 0], key=f"evt_{n}")
        for n in range(EVENTS)
    ]
    deliveries = events * 3
    random.Random(4).shuffle(deliveries)
    outcomes: Counter[int] = Counter()
    queue = iter(deliveries)

    async def deliver() -> None:
        for request in queue:
            outcomes[(await xp_rpc.RecordActivity(request)).outcome] += 1

    await asyncio.gather(*(deliver() for _ in range(CONCURRENCY)))

    expected: Counter[str] = Counter()
    for n in range(EVENTS):
        expected[f"user_{n % MEMBERS}"] += 5 if n % 7 == 0 else 20
    assert outcomes == {
        xp_pb2.ACTIVITY_OUTCOME_AWARDED: EVENTS,
        xp_pb2.ACTIVITY_OUTCOME_DUPLICATE: 2 * EVENTS,
    }
    async with sessionmaker() as session:
        members = dict(
            (
                await session.execute(
                    select(Member.user_id, Member.xp).where(Member.community_id == community_id)
                )
            ).all()
        )
        ledger = dict(
            (
                await session.execute(
                    select(LedgerEntry.user_id, func.sum(LedgerEntry.delta))
                    .where(LedgerEntry.community_id == community_id)
                    .group_by(LedgerEntry.user_id)
                )
            ).all()
        )
        entries = await session.scalar(
            select(func.count()).where(LedgerEntry.community_id == community_id)
        )
        activities = await session.scalar(
            select(func.count()).where(Activity.community_id == community_id)
        )
        monthly = dict(
            (
                await session.execute(
                    select(PeriodXp.period_start, func.sum(PeriodXp.xp))
                    .where(PeriodXp.community_id == community_id, PeriodXp.period == "month")
                    .group_by(PeriodXp.period_start)
                )
            ).all()
        )
    assert members == ledger == dict(expected)
    assert (entries, activities) == (EVENTS, EVENTS)
    # The run may straddle a month boundary (UTC): the months together hold every award.
    assert sum(monthly.values()) == sum(expected.values())
    async with sessionmaker() as session:
        balances = await session.execute(
            select(LedgerEntry.user_id, LedgerEntry.delta, LedgerEntry.balance_after)
            .where(LedgerEntry.community_id == community_id)
            .order_by(LedgerEntry.id)
        )
        running: Counter[str] = Counter()
        for user_id, delta, balance_after in balances:
            running[user_id] += delta
            assert balance_after == running[user_id]  # each entry saw the one before it
    top = await xp_rpc.GetLeaderboard(
        xp_pb2.GetLeaderboardRequest(community_id=community_id, limit=100)
    )
    best = sorted(expected.values(), reverse=True)[:100]
    assert [e.xp for e in top.entries] == best
