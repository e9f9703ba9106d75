"""The `xp.level_up` consumer over real NATS JetStream and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import EventBus, new_meta
from wee5_rewards.events import level_up_consumer
from wee5_rewards.models import Reward, processed_events
from wee5_rewards.service import RewardsService


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.1)


async def test_level_up_delivered_twice_and_replayed_yields_one_pending_reward(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    await bus.ensure_stream("xp")
    subject = bus.subject("xp.level_up")
    first = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id="u1", from_level=4, to_level=5, total_xp=1000
    )
    # The same level reached again under another event id (e.g. XP removed and re-earned).
    again = events_pb2.LevelUp(
        meta=new_meta(community_id), user_id="u1", from_level=4, to_level=5, total_xp=1100
    )
    for event in (first, first, again):
        await bus.publish(subject, event.SerializeToString(), event.meta.event_id)

    consumer = level_up_consumer(bus, sessionmaker, RewardsService())
    task = asyncio.create_task(consumer.run())
    event_ids = [uuid.UUID(first.meta.event_id), uuid.UUID(again.meta.event_id)]

    async def both_handled() -> bool:
        async with sessionmaker() as session:
            handled = await session.scalar(
                select(func.count())
                .select_from(processed_events)
                .where(
                    processed_events.c.consumer == consumer.name,
                    processed_events.c.event_id.in_(event_ids),
                )
            )
        return handled == len(event_ids)

    try:
        await eventually(both_handled)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async with sessionmaker() as session:
        rows = list(
            await session.scalars(select(Reward).where(Reward.community_id == community_id))
        )
    assert [(row.user_id, row.level, row.status) for row in rows] == [("u1", 5, "pending")]
