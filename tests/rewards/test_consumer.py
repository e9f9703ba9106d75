"""The `xp.level_up` and `xp.awarded` consumers over real NATS JetStream and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

from nats.js.errors import NotFoundError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import EventBus, new_meta
from wee5_kit.uow import unit_of_work
from wee5_rewards.events import level_up_consumer, xp_awarded_consumer
from wee5_rewards.models import MemberBadge, Reward, outbox, processed_events
from wee5_rewards.service import BadgeDraft, RewardsService


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


async def test_xp_events_delivered_at_once_award_a_badge_once(
    bus: EventBus, sessionmaker: async_sessionmaker[AsyncSession], community_id: str
) -> None:
    service = RewardsService()
    async with unit_of_work(sessionmaker) as uow:
        badge = await service.create_badge(
            uow.session,
            community_id,
            BadgeDraft("Regular", "", "", "xp", 500, "", "all_time", None),
        )
    await bus.ensure_stream("xp")
    events = [
        events_pb2.XpAwarded(
            meta=new_meta(community_id), user_id="u1", delta=20, total_xp=500 + 20 * i, level=4
        )
        for i in range(6)
    ]
    for event in (*events, events[0]):  # one of them twice
        await bus.publish(bus.subject("xp.awarded"), event.SerializeToString(), event.meta.event_id)
    # Two consumers share the durable, as two replicas would.
    consumers = [xp_awarded_consumer(bus, sessionmaker, service) for _ in range(2)]
    tasks = [asyncio.create_task(consumer.run()) for consumer in consumers]
    event_ids = [uuid.UUID(event.meta.event_id) for event in events]

    async def all_handled() -> bool:
        try:
            info = await bus.js.consumer_info(bus.stream_name("xp"), consumers[0].durable)
        except NotFoundError:  # not subscribed yet
            return False
        return bool(
            info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq
        )

    try:
        await eventually(all_handled, within=30.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async with sessionmaker() as session:
        holders = list(
            await session.scalars(
                select(MemberBadge.user_id).where(MemberBadge.badge_id == badge.id)
            )
        )
        announced = [
            events_pb2.BadgeAwarded.FromString(payload)
            for payload in await session.scalars(
                select(outbox.c.payload).where(outbox.c.subject == "rewards.badge_awarded")
            )
        ]
    assert holders == ["u1"]
    assert [e.badge_id for e in announced if e.meta.community_id == community_id] == [str(badge.id)]
    async with sessionmaker() as session:
        claimed = await session.scalar(
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.event_id.in_(event_ids))
        )
    assert claimed == 0  # judging badges twice is harmless: nothing claimed per event
