"""Profiles on the award path: learned from activities with a constant number of statements
per batch, however many members it names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.xp.conftest import MakeServicer
from wee5_xp.awards import ActivityInput
from wee5_xp.models import Profile
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
        async with sessionmaker() as session:
            for n, activity in enumerate(batch):
                stored = await session.get(Profile, activity.user_id)
                assert stored is not None
                assert (stored.display_name, stored.username) == (f"Name {n}", f"name{n}")

    assert counts[0] == counts[1]
