"""The outbox relay and idempotent consumers, over real Postgres and NATS JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import Consumer, EventBus, Outbox, new_meta
from wee5_xp.models import outbox, processed_events

Sessions = async_sessionmaker[AsyncSession]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.05)


def level_up_consumer(
    bus: EventBus,
    sessionmaker: Sessions,
    subject: str,
    handler: Callable[[AsyncSession, events_pb2.LevelUp], Awaitable[None]],
    name: str | None = None,
) -> Consumer[events_pb2.LevelUp]:
    return Consumer(
        bus=bus,
        sessionmaker=sessionmaker,
        processed=processed_events,
        name=name or f"kit_{uuid.uuid4().hex[:6]}",
        subject=subject,
        message_type=events_pb2.LevelUp,
        handler=handler,
    )


def level_up(community_id: str, user_id: str = "user_a") -> events_pb2.LevelUp:
    return events_pb2.LevelUp(
        meta=new_meta(community_id), user_id=user_id, from_level=1, to_level=2
    )


async def test_relay_publishes_committed_events_once_with_event_id_as_msg_id(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    relay_outbox = Outbox(outbox)
    relay_outbox.watch(sessionmaker)
    subject = f"xp.kit_test_{uuid.uuid4().hex[:6]}"
    committed = level_up(community_id)
    rolled_back = level_up(community_id, "user_b")

    async with sessionmaker.begin() as session:
        await relay_outbox.add(session, subject, committed)
    session = sessionmaker()
    async with session.begin():
        await relay_outbox.add(session, subject, rolled_back)
        await session.rollback()
    await session.close()

    subscription = await bus.js.subscribe(bus.subject(subject), ordered_consumer=True)
    relay = asyncio.create_task(relay_outbox.relay(sessionmaker, bus))
    try:
        received = await subscription.next_msg(timeout=10)
        # A re-publish of the same row (a relay that crashed before marking it) is dropped.
        await bus.publish(
            bus.subject(subject), committed.SerializeToString(), committed.meta.event_id
        )
        with contextlib.suppress(TimeoutError):
            extra = await subscription.next_msg(timeout=1)
            raise AssertionError(f"duplicate delivered: {extra}")
    finally:
        relay.cancel()
        await subscription.unsubscribe()

    assert received.headers is not None
    assert received.headers["Nats-Msg-Id"] == committed.meta.event_id
    event = events_pb2.LevelUp()
    event.ParseFromString(received.data)
    assert event.user_id == "user_a"
    async with sessionmaker() as check:
        unpublished = await check.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.subject == subject, outbox.c.published_at.is_(None))
        )
    assert unpublished == 0


async def test_relay_publishes_a_batch_in_commit_order(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    relay_outbox = Outbox(outbox)
    subject = f"xp.kit_order_{uuid.uuid4().hex[:6]}"
    events = [level_up(community_id, f"user_{n}") for n in range(60)]
    async with sessionmaker.begin() as session:
        await relay_outbox.add_many(session, [(subject, event) for event in events])

    subscription = await bus.js.subscribe(bus.subject(subject), ordered_consumer=True)
    relay = asyncio.create_task(relay_outbox.relay(sessionmaker, bus))
    try:
        received = [await subscription.next_msg(timeout=10) for _ in events]
    finally:
        relay.cancel()
        await subscription.unsubscribe()

    # Sent together, acknowledged together, and in the order they were committed.
    assert [(m.headers or {}).get("Nats-Msg-Id") for m in received] == [
        e.meta.event_id for e in events
    ]


async def deliveries(bus: EventBus, subject: str, count: int, times: int) -> list[list[Msg]]:
    """The first `count` messages on `subject`, delivered `times` times over by independent
    subscriptions (what a redelivery looks like to a consumer)."""
    delivered = []
    for _ in range(times):
        sub = await bus.js.pull_subscribe(
            bus.subject(subject),
            durable=None,
            stream=bus.stream_name("xp"),
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        delivered.append(await sub.fetch(count, timeout=5))
    return delivered


async def test_consumer_handles_an_event_once_even_when_delivered_twice(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    subject = f"xp.kit_dup_{uuid.uuid4().hex[:6]}"
    handled: list[str] = []

    async def remember(_session: AsyncSession, event: events_pb2.LevelUp) -> None:
        handled.append(event.meta.event_id)

    consumer = level_up_consumer(bus, sessionmaker, subject, remember)
    event = level_up(community_id)
    await bus.publish(bus.subject(subject), event.SerializeToString(), event.meta.event_id)

    # Two independent subscriptions each receive the one message: the same delivery twice.
    for copy in [message for copies in await deliveries(bus, subject, 1, 2) for message in copies]:
        await consumer.handle(copy)

    assert handled == [event.meta.event_id]


async def test_a_batch_handles_only_the_events_no_earlier_delivery_handled(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    subject = f"xp.kit_batch_dup_{uuid.uuid4().hex[:6]}"
    handled: list[str] = []

    async def remember(_session: AsyncSession, event: events_pb2.LevelUp) -> None:
        handled.append(event.meta.event_id)

    consumer = level_up_consumer(bus, sessionmaker, subject, remember)
    events = [level_up(community_id, f"user_{n}") for n in range(6)]
    for event in events:
        await bus.publish(bus.subject(subject), event.SerializeToString(), event.meta.event_id)
    first, again, third = await deliveries(bus, subject, 6, 3)
    for message in first[:2]:
        await consumer.handle(message)

    # All six again in one batch, one of the new ones in it twice.
    await consumer.handle_batch([*again, third[4]])

    assert sorted(handled) == sorted(event.meta.event_id for event in events)


async def test_consumer_retries_a_failed_handler_and_commits_nothing_from_the_failure(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    subject = f"xp.kit_retry_{uuid.uuid4().hex[:6]}"
    attempts: list[int] = []
    name = f"kit_{uuid.uuid4().hex[:6]}"

    async def flaky(_session: AsyncSession, _event: events_pb2.LevelUp) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("downstream hiccup")

    consumer = level_up_consumer(bus, sessionmaker, subject, flaky, name=name)
    task = asyncio.create_task(consumer.run())
    try:
        event = level_up(community_id)
        await bus.publish(bus.subject(subject), event.SerializeToString(), event.meta.event_id)

        async def processed() -> bool:
            async with sessionmaker() as session:
                found = await session.scalar(
                    select(func.count())
                    .select_from(processed_events)
                    .where(processed_events.c.consumer == name)
                )
            return found == 1

        await eventually(processed)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(attempts) == 2


async def run_until_processed(
    consumer: Consumer[events_pb2.LevelUp], sessionmaker: Sessions, count: int
) -> None:
    async def processed() -> bool:
        async with sessionmaker() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(processed_events)
                .where(processed_events.c.consumer == consumer.name)
            )
        return found == count

    task = asyncio.create_task(consumer.run())
    try:
        await eventually(processed)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_consumer_handles_what_one_fetch_brought_in_one_transaction(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    subject = f"xp.kit_batch_{uuid.uuid4().hex[:6]}"
    transactions: dict[str, int] = {}

    async def remember(session: AsyncSession, event: events_pb2.LevelUp) -> None:
        assert event.meta.event_id not in transactions, "handled twice"
        transactions[event.meta.event_id] = int(await session.scalar(text("SELECT txid_current()")))

    consumer = level_up_consumer(bus, sessionmaker, subject, remember)
    events = [level_up(community_id, f"user_{n}") for n in range(20)]
    for event in events:
        await bus.publish(bus.subject(subject), event.SerializeToString(), event.meta.event_id)

    await run_until_processed(consumer, sessionmaker, len(events))

    assert set(transactions) == {event.meta.event_id for event in events}
    # One commit per fetch, not one per event (all 20 were waiting: usually one fetch).
    assert len(set(transactions.values())) < len(events)


async def test_one_failing_event_fails_only_itself_when_its_batch_is_retried_one_by_one(
    sessionmaker: Sessions, bus: EventBus, community_id: str
) -> None:
    await bus.ensure_stream("xp")
    subject = f"xp.kit_batch_fail_{uuid.uuid4().hex[:6]}"
    events = [level_up(community_id, f"user_{n}") for n in range(6)]
    poisoned = events[3].meta.event_id
    attempts: dict[str, int] = {}

    async def flaky(_session: AsyncSession, event: events_pb2.LevelUp) -> None:
        attempts[event.meta.event_id] = attempts.get(event.meta.event_id, 0) + 1
        if event.meta.event_id == poisoned and attempts[poisoned] <= 2:
            raise RuntimeError("downstream hiccup")

    consumer = level_up_consumer(bus, sessionmaker, subject, flaky)
    for event in events:
        await bus.publish(bus.subject(subject), event.SerializeToString(), event.meta.event_id)

    await run_until_processed(consumer, sessionmaker, len(events))

    # Fails in the batch, fails again alone (redelivered), then succeeds: three attempts. The
    # others ran in the failed batch, were rolled back, and committed once on their own.
    assert attempts[poisoned] == 3
    async with sessionmaker() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.consumer == consumer.name)
        )
    assert rows == len(events)


def test_redelivery_delays_double_and_are_spread_around_each_step() -> None:
    from wee5_kit.events import _retry_delay

    for delivered, step in ((1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (19, 60.0)):
        delays = {_retry_delay(delivered) for _ in range(50)}
        assert all(0.75 * step <= delay <= 1.25 * step for delay in delays)
        # Spread: whole-second delays fall due as NATS 2.9's pull requests expire.
        assert len(delays) > 40
