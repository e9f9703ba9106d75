"""Migration 0003 of rewards on a database that holds guild bindings made before proofs: a
guild set on several communities is cleared everywhere (but on the community named after it),
single bindings stay as "legacy", and afterwards a duplicate cannot be written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from wee5_kit.migrations import upgrade

HIJACKED, LEGIT = "1000000000000000001", "1000000000000000002"


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    url = make_url(database_url)
    name = f"{url.database}_guilds_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    scratch_url = url.set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(scratch_url, poolclass=NullPool)
    try:
        yield scratch_url, engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_duplicate_bindings_are_cleared_and_cannot_come_back(
    scratch: tuple[str, AsyncEngine],
) -> None:
    url, engine = scratch
    await asyncio.to_thread(upgrade, "wee5_rewards", url, "0002")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO rewards.community_settings (community_id, discord_guild_id) VALUES "
                f"('exp_a', '{HIJACKED}'), ('exp_b', '{HIJACKED}'), ('{HIJACKED}', '{HIJACKED}'), "
                f"('exp_c', '{LEGIT}'), ('exp_d', NULL)"
            )
        )

    await asyncio.to_thread(upgrade, "wee5_rewards", url, "head")

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT community_id, discord_guild_id, discord_guild_bound_by "
                    "FROM rewards.community_settings ORDER BY community_id"
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        (HIJACKED, HIJACKED, "legacy"),
        ("exp_a", None, None),
        ("exp_b", None, None),
        ("exp_c", LEGIT, "legacy"),
        ("exp_d", None, None),
    ]
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE rewards.community_settings SET discord_guild_id = :guild "
                    "WHERE community_id = 'exp_a'"
                ),
                {"guild": LEGIT},
            )
