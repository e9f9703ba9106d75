"""Profiles on the award path: learned from activities with a constant number of statements
per batch, however many members it names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.xp.conftest import MakeServicer
from wee5.events.v1 import events_pb2
from wee5_xp.awards import ActivityInput
from wee5_xp.models import Profile, outbox
from wee5_xp.profiles import ProfileFields


@contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


def described_messages(community_id: str, members: int) -> list[ActivityInput]:
    return [
        ActivityInput(
            community_id=community_id,
            user_id=f"user_{uuid.uuid4().hex[:12]}",
            kind="message",
            source="whop",
            idempotency_key=uuid.uuid4().hex,
            profile=ProfileFields(f"Name {n}", f"name{n}", None),
        )
        for n in range(members)
    ]


def renamed(batch: list[ActivityInput], name: str, *, new_keys: bool) -> list[ActivityInput]:
    """`batch` again, a second later, naming each member `<name> <n>` (username unknown)."""
    return [
        replace(
            a,
            idempotency_key=uuid.uuid4().hex if new_keys else a.idempotency_key,
            profile=ProfileFields(f"{name} {n}", None, None),
            occurred_at=datetime.now(UTC) + timedelta(seconds=1),
        )
        for n, a in enumerate(batch)
    ]


async def stored_names(
    sessionmaker: async_sessionmaker[AsyncSession], batch: list[ActivityInput]
) -> list[tuple[str | None, str | None]]:
    """(display name, username) of each activity's member, as stored."""
    async with sessionmaker() as session:
        stored = [await session.get(Profile, a.user_id) for a in batch]
    return [(p.display_name, p.username) if p else (None, None) for p in stored]


async def test_a_batch_learns_every_profile_with_as_many_statements_for_2_as_for_40(
    make_xp: MakeServicer,
    community_id: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    service = make_xp(xp_cooldown_seconds=0).service
    counts = []
    for size in (2, 40):
        batch = described_messages(community_id, size)
        # The community's config is cached after the first batch; read it up front for both.
        async with service.transaction() as session:
            await service.config_of(session, community_id)
        with counting_statements(engine) as statements:
            async with service.transaction() as session:
                await service.record_activities(session, batch)
        counts.append(len(statements))
        assert await stored_names(sessionmaker, batch) == [
            (f"Name {n}", f"name{n}") for n in range(size)
        ]

    assert counts[0] == counts[1]


async def test_a_batchs_events_and_profiles_are_written_with_its_awards(
    make_xp: MakeServicer,
    community_id: str,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Each statement is a round trip the batch's callers wait for: the outbox rows and the
    # profiles ride in the statement that writes the awards.
    service = make_xp(xp_cooldown_seconds=0).service
    first = described_messages(community_id, 3)
    async with service.transaction() as session:
        await service.record_activities(session, first)  # the members exist from here on
    again = renamed(first, "Renamed", new_keys=True)
    with counting_statements(engine) as statements:
        async with service.transaction() as session:
            results = await service.record_activities(session, again)

    assert [r.outcome for r in results] == ["awarded"] * 3
    # The activities inserted with their members locked, and one write of awards, events and
    # profiles.
    assert [s.split()[:3] for s in statements] == [
        ["WITH", "inserted", "AS"],
        ["WITH", "saved", "AS"],
    ]
    assert await stored_names(sessionmaker, again) == [
        (f"Renamed {n}", f"name{n}") for n in range(3)
    ]
    async with sessionmaker() as session:
        payloads = await session.scalars(
            select(outbox.c.payload).where(outbox.c.subject == "xp.awarded")
        )
        queued = [events_pb2.XpAwarded.FromString(p) for p in payloads]
    assert sorted(e.user_id for e in queued if e.meta.community_id == community_id) == sorted(
        a.user_id for a in first + again
    )


async def test_a_batch_that_awards_nothing_still_learns_its_profiles(
    make_xp: MakeServicer, community_id: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    service = make_xp(xp_cooldown_seconds=0).service
    batch = described_messages(community_id, 2)
    async with service.transaction() as session:
        await service.record_activities(session, batch)
    # Redelivered (duplicates: nothing awarded) with names the source gives now.
    later = renamed(batch, "Later", new_keys=False)
    async with service.transaction() as session:
        results = await service.record_activities(session, later)

    assert [r.outcome for r in results] == ["duplicate"] * 2
    assert await stored_names(sessionmaker, later) == [(f"Later {n}", f"name{n}") for n in range(2)]
