"""Recording activities against real Postgres and Redis: XP, ledger, outbox, cooldown, races."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.conftest import MakeServicer
from wee5.events.v1 import events_pb2
from wee5_kit.errors import Unavailable
from wee5_xp.awards import ActivityInput, ActivityResult
from wee5_xp.errors import InvalidActivity
from wee5_xp.models import Activity, LedgerEntry, Member, outbox

Sessions = async_sessionmaker[AsyncSession]


def message(
    community_id: str, user_id: str = "user_a", key: str | None = None, **kw: object
) -> ActivityInput:
    return ActivityInput(
        community_id=community_id,
        user_id=user_id,
        kind=str(kw.pop("kind", "message")),
        source="whop",
        idempotency_key=key or f"msg_{uuid.uuid4().hex}",
        **kw,  # type: ignore[arg-type]
    )


async def member_of(sessions: Sessions, community_id: str, user_id: str) -> Member | None:
    async with sessions() as session:
        return await session.get(Member, (community_id, user_id))


async def ledger_sum(sessions: Sessions, community_id: str, user_id: str) -> int:
    async with sessions() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(
                LedgerEntry.community_id == community_id, LedgerEntry.user_id == user_id
            )
        )
        return int(total or 0)


async def outbox_events(sessions: Sessions, community_id: str, subject: str) -> list[bytes]:
    async with sessions() as session:
        rows = await session.execute(
            select(outbox.c.payload).where(outbox.c.subject == subject).order_by(outbox.c.id)
        )
        payloads = [row.payload for row in rows]
    decoded = []
    for payload in payloads:
        event = events_pb2.LevelUp() if subject == "xp.level_up" else events_pb2.XpAwarded()
        event.ParseFromString(payload)
        if event.meta.community_id == community_id:
            decoded.append(payload)
    return decoded


async def test_message_awards_20_xp_with_ledger_entry_and_event(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp()
    result = await xp.batcher.record(message(community_id))

    assert (result.outcome, result.xp_awarded, result.total_xp, result.level) == (
        "awarded",
        20,
        20,
        1,
    )
    member = await member_of(sessionmaker, community_id, "user_a")
    assert member is not None
    assert (member.xp, member.level, member.messages) == (20, 1, 1)
    assert await ledger_sum(sessionmaker, community_id, "user_a") == 20
    assert len(await outbox_events(sessionmaker, community_id, "xp.awarded")) == 1


async def test_redelivered_activity_counts_once(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp()
    outcomes = [
        (await xp.batcher.record(message(community_id, key="msg_same"))).outcome for _ in range(3)
    ]

    assert outcomes == ["awarded", "duplicate", "duplicate"]
    member = await member_of(sessionmaker, community_id, "user_a")
    assert member is not None
    assert member.xp == 20
    assert await ledger_sum(sessionmaker, community_id, "user_a") == 20


async def test_concurrent_redeliveries_count_once(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    results = await asyncio.gather(
        *(xp.batcher.record(message(community_id, key="msg_race")) for _ in range(5))
    )

    assert sorted(r.outcome for r in results) == ["awarded"] + ["duplicate"] * 4
    assert await ledger_sum(sessionmaker, community_id, "user_a") == 20


async def test_message_inside_cooldown_earns_nothing_and_records_why(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=60)
    first = await xp.batcher.record(message(community_id))
    second = await xp.batcher.record(message(community_id, key="msg_second"))
    reaction = await xp.batcher.record(message(community_id, kind="reaction"))

    assert first.outcome == "awarded"
    assert (second.outcome, second.skip_reason, second.total_xp) == ("skipped", "cooldown", 20)
    # The cooldown is per kind: a reaction right after a message still earns.
    assert (reaction.outcome, reaction.xp_awarded) == ("awarded", 5)
    async with sessionmaker() as session:
        skipped = await session.scalar(
            select(Activity).where(
                Activity.community_id == community_id, Activity.idempotency_key == "msg_second"
            )
        )
    assert skipped is not None
    assert (skipped.skip_reason, skipped.xp_awarded) == ("cooldown", 0)
    assert await ledger_sum(sessionmaker, community_id, "user_a") == 25


async def test_concurrent_activities_for_one_member_all_count(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    await asyncio.gather(*(xp.batcher.record(message(community_id)) for _ in range(10)))

    member = await member_of(sessionmaker, community_id, "user_a")
    assert member is not None
    assert (member.xp, member.messages) == (200, 10)
    async with sessionmaker() as session:
        balances = list(
            await session.scalars(
                select(LedgerEntry.balance_after)
                .where(LedgerEntry.community_id == community_id)
                .order_by(LedgerEntry.id)
            )
        )
    # Serialized on the member row: every entry saw the one before it.
    assert balances == list(range(20, 201, 20))


async def test_reaching_level_5_publishes_each_level_up_once(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    for _ in range(39):  # 39 × 20 = 780 XP; level 5 needs 770.
        await xp.batcher.record(message(community_id))

    member = await member_of(sessionmaker, community_id, "user_a")
    assert member is not None
    assert (member.xp, member.level) == (780, 5)
    level_ups = []
    for payload in await outbox_events(sessionmaker, community_id, "xp.level_up"):
        event = events_pb2.LevelUp()
        event.ParseFromString(payload)
        level_ups.append((event.from_level, event.to_level))
    assert level_ups == [(1, 2), (2, 3), (3, 4), (4, 5)]


async def test_bot_authors_earn_nothing(make_xp: MakeServicer, community_id: str) -> None:
    result = await make_xp().batcher.record(message(community_id, author_is_bot=True))
    assert (result.outcome, result.skip_reason) == ("skipped", "bot_author")


async def test_messages_shorter_than_the_minimum_earn_nothing(
    make_xp: MakeServicer, community_id: str
) -> None:
    xp = make_xp(xp_min_message_length=5)
    short = await xp.batcher.record(message(community_id, content_length=2))
    long = await xp.batcher.record(message(community_id, content_length=12))
    assert (short.outcome, short.skip_reason) == ("skipped", "too_short")
    assert long.outcome == "awarded"


async def test_invalid_activity_is_rejected_before_anything_is_written(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    with pytest.raises(InvalidActivity):
        await make_xp().batcher.record(message(community_id, kind="custom"))
    with pytest.raises(InvalidActivity):
        await make_xp().batcher.record(message(community_id, user_id=""))
    assert await member_of(sessionmaker, community_id, "user_a") is None


async def test_failed_transaction_gives_the_cooldown_back(
    make_xp: MakeServicer,
    sessionmaker: Sessions,
    community_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xp = make_xp(xp_cooldown_seconds=60)

    async def broken_write(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr("wee5_xp.repository.XpRepository.write_awards", broken_write)
        with pytest.raises(RuntimeError):
            await xp.batcher.record(message(community_id, key="msg_retry"))

    retried = await xp.batcher.record(message(community_id, key="msg_retry"))
    assert (retried.outcome, retried.xp_awarded) == ("awarded", 20)


async def test_calls_queued_when_the_batcher_closes_fail_as_unavailable_not_hang(
    make_xp: MakeServicer, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    calls = [asyncio.create_task(xp.batcher.record(message(community_id))) for _ in range(20)]
    await asyncio.sleep(0)  # queued, the writers started
    await xp.batcher.close()

    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)

    refused = [o for o in outcomes if isinstance(o, Unavailable)]
    done = [o for o in outcomes if isinstance(o, ActivityResult) and o.outcome == "awarded"]
    assert refused
    assert len(refused) + len(done) == len(calls)
