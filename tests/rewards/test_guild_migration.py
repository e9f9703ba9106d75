"""Migration 0003 of rewards on a database that holds guild bindings made before proofs: a
guild set on several communities is cleared everywhere (but on the community named after it),
single bindings stay as "legacy", and afterwards a duplicate cannot be written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.scratch_db import scratch_database
from wee5_kit.migrations import upgrade

HIJACKED, LEGIT = "1000000000000000001", "1000000000000000002"


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    async with scratch_database(database_url) as database:
        yield database


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
