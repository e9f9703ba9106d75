"""Points for actions through the real xp server: the AwardPoints RPC over gRPC, and the
consumers of benchmarks.submitted, resources.downloaded and billing.subscription.renewed fed
through the publishers' own outboxes and NATS JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.support_tasks import ledger, totals
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_benchmarks.models import outbox as benchmarks_outbox
from wee5_billing.models import outbox as billing_outbox
from wee5_kit.events import EventBus, Outbox, new_meta
from wee5_resources.models import outbox as resources_outbox
from wee5_xp.models import outbox as xp_outbox
from wee5_xp.models import processed_events

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Stub

Sessions = async_sessionmaker[AsyncSession]


async def award(stub: Stub, community_id: str, **fields: object) -> xp_pb2.AwardPointsResponse:
    request = xp_pb2.AwardPointsRequest(community_id=community_id, **fields)  # type: ignore[arg-type]
    response: xp_pb2.AwardPointsResponse = await stub.AwardPoints(request, timeout=5)
    return response


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.1)


async def test_award_points_counts_once_per_idempotency_key(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    first = await award(
        xp_grpc, community_id, user_id="u1", reason="intro", idempotency_key="intro:u1"
    )
    again = await award(
        xp_grpc, community_id, user_id="u1", reason="intro", idempotency_key="intro:u1"
    )

    # No amount given: the configured one for the reason (+25 for an intro).
    assert (first.duplicate, first.total_xp, first.level) == (False, 25, 1)
    assert (again.duplicate, again.total_xp, again.level) == (True, 25, 1)
    assert await ledger(sessionmaker, community_id) == [("u1", 25, "intro")]


async def test_concurrent_repeats_of_one_award_count_once(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    results = await asyncio.gather(
        *(
            award(
                xp_grpc, community_id, user_id="u1", points=7, reason="quest", idempotency_key="q1"
            )
            for _ in range(6)
        )
    )

    assert sorted(r.duplicate for r in results) == [False] + [True] * 5
    assert await totals(sessionmaker, community_id) == {"u1": 7}


async def test_concurrent_first_awards_of_a_new_member_all_count(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    # Each call is a transaction of its own that finds the member missing: one creates the
    # row, the others wait for it and then lock it, so every award lands on the one row.
    results = await asyncio.gather(
        *(
            award(
                xp_grpc,
                community_id,
                user_id="newcomer",
                points=points,
                reason="quest",
                idempotency_key=f"quest:{points}",
            )
            for points in range(1, 9)
        )
    )

    assert not any(r.duplicate for r in results)
    assert await totals(sessionmaker, community_id) == {"newcomer": 36}
    # Serialized on the member row: the totals answered are the running sums, each once.
    assert len({r.total_xp for r in results}) == 8
    assert max(r.total_xp for r in results) == 36


async def test_points_follow_the_award_path_of_activities(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    response = await award(
        xp_grpc, community_id, user_id="u1", points=120, reason="quest", idempotency_key="big"
    )

    assert (response.total_xp, response.level) == (120, 2)
    async with sessionmaker() as session:
        subjects = [
            row.subject
            for row in await session.execute(
                select(xp_outbox.c.subject, xp_outbox.c.payload).order_by(xp_outbox.c.id)
            )
            if _community_of(row.subject, row.payload) == community_id
        ]
    assert subjects == ["xp.awarded", "xp.level_up"]
    week = await xp_grpc.GetLeaderboard(
        xp_pb2.GetLeaderboardRequest(community_id=community_id, period=xp_pb2.PERIOD_WEEK),
        timeout=5,
    )
    assert [(e.user_id, e.xp, e.level) for e in week.entries] == [("u1", 120, 2)]
    member = await xp_grpc.GetMember(
        xp_pb2.GetMemberRequest(community_id=community_id, user_id="u1"), timeout=5
    )
    # Points are not activities: no counter moves.
    assert (member.member.xp, member.member.totals.messages, member.member.totals.custom) == (
        120,
        0,
        0,
    )


def _community_of(subject: str, payload: bytes) -> str:
    event = events_pb2.LevelUp() if subject == "xp.level_up" else events_pb2.XpAwarded()
    event.ParseFromString(payload)
    return event.meta.community_id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user_id": "u1", "reason": "intro"}, "idempotency_key"),
        ({"reason": "intro", "idempotency_key": "k"}, "user_id"),
        ({"user_id": "u1", "reason": "Not A Reason", "idempotency_key": "k"}, "reason"),
        ({"user_id": "u1", "reason": "message", "idempotency_key": "k"}, "reserved"),
        ({"user_id": "u1", "reason": "quest", "idempotency_key": "k"}, "points are required"),
        ({"user_id": "u1", "reason": "quest", "points": -5, "idempotency_key": "k"}, "between"),
    ],
)
async def test_invalid_awards_are_refused_with_invalid_argument(
    xp_grpc: Stub, community_id: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await award(xp_grpc, community_id, **fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (raised.value.details() or "")


async def test_a_key_reused_for_another_award_is_refused(xp_grpc: Stub, community_id: str) -> None:
    await award(xp_grpc, community_id, user_id="u1", reason="intro", idempotency_key="intro")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await award(xp_grpc, community_id, user_id="u2", reason="intro", idempotency_key="intro")
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def publish(
    sessions: Sessions, bus: EventBus, table: Table, subject: str, *events: object
) -> None:
    """Publishes like benchmarks/resources/billing do: outbox row in a transaction, then the
    kit's relay sends it to JetStream with Nats-Msg-Id = event id."""
    outbox = Outbox(table)
    async with sessions.begin() as session:
        for event in events:
            await outbox.add(session, subject, event)  # type: ignore[arg-type]
    relay = asyncio.create_task(outbox.relay(sessions, bus, poll_seconds=0.1))
    try:
        await eventually(lambda: _all_published(sessions, table))
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay


async def _all_published(sessions: Sessions, table: Table) -> bool:
    async with sessions() as session:
        left = await session.scalar(
            select(table.c.id).where(table.c.published_at.is_(None)).limit(1)
        )
    return left is None


async def test_event_points_arrive_once_through_jetstream(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions, bus: EventBus
) -> None:
    def submitted(user: str, category: str, first: bool) -> events_pb2.BenchmarkSubmitted:
        return events_pb2.BenchmarkSubmitted(
            meta=new_meta(community_id), user_id=user, category=category, first_in_category=first
        )

    def downloaded(user: str, resource: str, first: bool) -> events_pb2.ResourceDownloaded:
        return events_pb2.ResourceDownloaded(
            meta=new_meta(community_id), user_id=user, resource_id=resource, first_by_member=first
        )

    benchmark = submitted("alice", "gpu", True)
    benchmarks = [
        benchmark,
        # The same first submission announced again under another event id.
        submitted("alice", "gpu", True),
        submitted("alice", "gpu", False),  # a later submission: nothing
        submitted("alice", "cpu", True),
    ]
    await publish(sessionmaker, bus, benchmarks_outbox, "benchmarks.submitted", *benchmarks)
    # A redelivery of the very same event (same Nats-Msg-Id).
    await bus.publish(
        bus.subject("benchmarks.submitted"), benchmark.SerializeToString(), benchmark.meta.event_id
    )
    downloads = [
        downloaded("bob", "res_1", True),
        downloaded("bob", "res_1", True),
        downloaded("bob", "res_1", False),
        downloaded("bob", "res_2", True),
    ]
    await publish(sessionmaker, bus, resources_outbox, "resources.downloaded", *downloads)
    renewal = events_pb2.SubscriptionRenewed(
        meta=new_meta(community_id), owner_user_id="owner", invoice_id=f"in_{uuid.uuid4().hex}"
    )
    again = events_pb2.SubscriptionRenewed(
        meta=new_meta(community_id), owner_user_id="owner", invoice_id=renewal.invoice_id
    )
    await publish(sessionmaker, bus, billing_outbox, "billing.subscription.renewed", renewal, again)
    sent: list[
        events_pb2.BenchmarkSubmitted
        | events_pb2.ResourceDownloaded
        | events_pb2.SubscriptionRenewed
    ] = [
        *benchmarks,
        *downloads,
        renewal,
        again,
    ]

    published = {uuid.UUID(event.meta.event_id) for event in sent}

    async def all_handled() -> bool:
        async with sessionmaker() as session:
            handled = set(
                await session.scalars(
                    select(processed_events.c.event_id).where(
                        processed_events.c.event_id.in_(published)
                    )
                )
            )
        return handled == published

    await eventually(all_handled)
    assert await totals(sessionmaker, community_id) == {"alice": 100, "bob": 10, "owner": 10}
    assert sorted(await ledger(sessionmaker, community_id)) == sorted(
        [
            ("alice", 50, "benchmark_submitted"),
            ("alice", 50, "benchmark_submitted"),
            ("bob", 5, "resource_downloaded"),
            ("bob", 5, "resource_downloaded"),
            ("owner", 10, "subscription_renewed"),
        ]
    )
    board = await xp_grpc.GetLeaderboard(
        xp_pb2.GetLeaderboardRequest(community_id=community_id, period=xp_pb2.PERIOD_ALL),
        timeout=5,
    )
    # The consumers mirrored the points into the Redis board.
    assert sorted((e.user_id, e.xp) for e in board.entries) == [
        ("alice", 100),
        ("bob", 10),
        ("owner", 10),
    ]


async def test_an_event_that_cannot_give_points_is_dropped_not_retried(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions, bus: EventBus
) -> None:
    nobody = events_pb2.BenchmarkSubmitted(
        meta=new_meta(community_id), user_id="", category="gpu", first_in_category=True
    )
    fine = events_pb2.BenchmarkSubmitted(
        meta=new_meta(community_id), user_id="carol", category="gpu", first_in_category=True
    )
    await publish(sessionmaker, bus, benchmarks_outbox, "benchmarks.submitted", nobody, fine)
    published = {uuid.UUID(nobody.meta.event_id), uuid.UUID(fine.meta.event_id)}

    async def both_handled() -> bool:
        async with sessionmaker() as session:
            handled = set(
                await session.scalars(
                    select(processed_events.c.event_id).where(
                        processed_events.c.event_id.in_(published)
                    )
                )
            )
        return handled == published

    await eventually(both_handled)
    assert await totals(sessionmaker, community_id) == {"carol": 50}
