"""RecordActivities, a bot's batch in one call, against real Postgres and Redis: checked whole
before anything is recorded, committed set-based (a transaction per writer, not per activity),
each activity's row keeping what it earned; and how the group commit cuts calls into
transactions (one for what arrives together, a member always in one)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.conftest import MakeServicer, activity
from tests.xp.test_record_activity import message
from wee5.xp.v1 import xp_pb2
from wee5_kit.errors import DomainError
from wee5_xp.batching import ActivityBatcher
from wee5_xp.models import Activity
from wee5_xp.service import XpService

Sessions = async_sessionmaker[AsyncSession]


def batch(community_id: str, *items: dict[str, Any]) -> xp_pb2.RecordActivitiesRequest:
    return xp_pb2.RecordActivitiesRequest(
        activities=[activity(community_id, **item).activity for item in items]
    )


async def stored(sessions: Sessions, community_id: str) -> dict[str, tuple[int, str | None]]:
    """idempotency key -> (xp_awarded, skip_reason) of the community's activity rows."""
    async with sessions() as session:
        rows = await session.execute(
            select(Activity.idempotency_key, Activity.xp_awarded, Activity.skip_reason).where(
                Activity.community_id == community_id
            )
        )
        return {key: (xp, reason) for key, xp, reason in rows}


def counted_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the group commit records (one transaction each), as they come."""
    calls: list[int] = []
    record = XpService.record_activities

    async def counted(
        self: XpService, session: AsyncSession, activities: Any, **options: Any
    ) -> Any:
        calls.append(len(activities))
        return await record(self, session, activities, **options)

    monkeypatch.setattr(XpService, "record_activities", counted)
    return calls


async def test_a_batch_with_one_invalid_activity_is_refused_whole_naming_it(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    request = batch(
        community_id,
        {"key": "fine"},
        {"key": "no-custom-kind", "kind": xp_pb2.ACTIVITY_KIND_CUSTOM},
    )

    with pytest.raises(DomainError) as refused:
        await xp.RecordActivities(request, None)  # type: ignore[arg-type]

    assert refused.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith("activities[1].custom_kind: ")
    assert await stored(sessionmaker, community_id) == {}


async def test_a_batch_of_a_thousand_is_recorded_in_a_transaction_per_writer(
    make_xp: MakeServicer, community_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)  # the batcher has two writers
    calls = counted_transactions(monkeypatch)
    items = [{"user_id": f"user_{n % 300}", "key": f"k{n}"} for n in range(1000)]

    reply = await xp.RecordActivities(batch(community_id, *items), None)  # type: ignore[arg-type]

    assert [r.outcome for r in reply.results] == [xp_pb2.ACTIVITY_OUTCOME_AWARDED] * 1000
    assert len(calls) <= 2
    assert sum(calls) == 1000


async def test_calls_that_arrive_together_share_one_transaction(
    make_xp: MakeServicer, community_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)  # two writers, for large batches only
    transactions = counted_transactions(monkeypatch)

    results = await asyncio.gather(
        *(xp.batcher.record(message(community_id, f"user_{n}")) for n in range(16))
    )

    # Split between the two writers they were two half-full transactions at once, which
    # cost more than one full one.
    assert [r.outcome for r in results] == ["awarded"] * 16
    assert transactions == [16]


async def test_a_call_of_several_activities_is_committed_without_waiting_for_more(
    make_xp: MakeServicer, community_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window gathers callers of one activity each; a call of several (the gateway's
    # coalesced deliveries) was gathered by its sender already. With a window of a minute,
    # waiting for it would outlast the timeout.
    xp = make_xp(xp_cooldown_seconds=0)
    xp.batcher = ActivityBatcher(xp.service, window=60)
    transactions = counted_transactions(monkeypatch)
    request = batch(community_id, {"user_id": "user_1", "key": "a"}, {"key": "b"})

    reply = await asyncio.wait_for(xp.RecordActivities(request, None), 10)  # type: ignore[arg-type]

    assert [r.outcome for r in reply.results] == [xp_pb2.ACTIVITY_OUTCOME_AWARDED] * 2
    assert transactions == [2]


async def test_a_members_activities_keep_their_order_across_large_batches(
    make_xp: MakeServicer,
    sessionmaker: Sessions,
    community_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    transactions = counted_transactions(monkeypatch)
    calls = [
        batch(community_id, *({"user_id": f"user_{n % 100}", "key": f"{c}{n}"} for n in range(300)))
        for c in "ab"
    ]

    await asyncio.gather(*(xp.RecordActivities(call, None) for call in calls))  # type: ignore[arg-type]

    # Each call is split between the two writers, a member's activities all in one of them.
    assert len(transactions) == 4
    assert sum(transactions) == 600
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Activity.user_id, Activity.idempotency_key)
            .where(Activity.community_id == community_id)
            .order_by(Activity.id)
        )
    applied: dict[str, list[str]] = defaultdict(list)
    for user_id, key in rows:
        applied[user_id].append(key)
    assert len(applied) == 100
    for m in range(100):
        # In each call's order; which call came first is the servicer's to say.
        a, b = ([f"{c}{m + k}" for k in (0, 100, 200)] for c in "ab")
        assert applied[f"user_{m}"] in (a + b, b + a)


async def test_each_activity_row_keeps_what_it_earned_or_why_not(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=60)
    request = batch(
        community_id,
        {"key": "first"},
        {"key": "inside-cooldown"},
        {"key": "bot", "author_is_bot": True},
        {"key": "reaction", "kind": xp_pb2.ACTIVITY_KIND_REACTION},
        {"key": "first"},
    )

    reply = await xp.RecordActivities(request, None)  # type: ignore[arg-type]

    assert [r.outcome for r in reply.results] == [
        xp_pb2.ACTIVITY_OUTCOME_AWARDED,
        xp_pb2.ACTIVITY_OUTCOME_SKIPPED,
        xp_pb2.ACTIVITY_OUTCOME_SKIPPED,
        xp_pb2.ACTIVITY_OUTCOME_AWARDED,
        xp_pb2.ACTIVITY_OUTCOME_DUPLICATE,
    ]
    assert await stored(sessionmaker, community_id) == {
        "first": (20, None),
        "inside-cooldown": (0, "cooldown"),
        "bot": (0, "bot_author"),
        "reaction": (5, None),
    }


@pytest.mark.parametrize("depth", [2, 1])
async def test_the_next_batch_begins_once_the_one_before_holds_its_members(
    make_xp: MakeServicer, community_id: str, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    xp.batcher = ActivityBatcher(xp.service, depth=depth)
    # The first batch stops once it holds its member, until the test lets it go on.
    held, release = asyncio.Event(), asyncio.Event()
    write_batch = XpService._write_batch

    async def stopping(self: XpService, *args: Any) -> None:
        if not held.is_set():
            held.set()
            await release.wait()
        await write_batch(self, *args)

    monkeypatch.setattr(XpService, "_write_batch", stopping)
    first = asyncio.create_task(xp.batcher.record(message(community_id, "user_a", "a1")))
    await asyncio.wait_for(held.wait(), 10)

    other = asyncio.create_task(xp.batcher.record(message(community_id, "user_b", "b1")))
    done, _ = await asyncio.wait([other], timeout=2)
    if depth == 1:
        # Each batch begins after the one before committed.
        assert not done
        release.set()
        assert (await first).total_xp == (await other).total_xp == 20
        return
    # Another member's activity is committed while the first batch is still open ...
    assert done
    assert other.result().total_xp == 20
    assert not first.done()
    # ... one of the held member's waits in Postgres for it, and is applied after it.
    again = asyncio.create_task(xp.batcher.record(message(community_id, "user_a", "a2")))
    done, _ = await asyncio.wait([again], timeout=0.5)
    assert not done
    release.set()
    assert (await first).total_xp == 20
    assert (await again).total_xp == 40
