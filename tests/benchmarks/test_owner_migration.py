"""Migration 0004 of benchmarks gives existing submissions the owner their member id shows:
an account id is that account's, a Whop user id that Whop user's; any other id stays
unattributed (NULL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.scratch_db import scratch_database
from wee5_kit.migrations import upgrade

ACCOUNT = "0b6f9f7e-3d4c-4a55-9a8e-2f7f4a1c9e01"


@pytest.fixture
async def scratch(database_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    async with scratch_database(database_url) as database:
        yield database


async def test_existing_submissions_get_the_owner_their_member_id_shows(
    scratch: tuple[str, AsyncEngine],
) -> None:
    url, engine = scratch
    await asyncio.to_thread(upgrade, "wee5_benchmarks", url, "0003")
    async with engine.begin() as conn:
        for user_id in (ACCOUNT, "user_abc", "123456789012345678", "userx"):
            await conn.execute(
                text(
                    "INSERT INTO benchmarks.submissions (id, community_id, user_id, category, "
                    "schema_version, version, status, flagged, outliers, revision) VALUES "
                    "(gen_random_uuid(), 'exp_1', :user_id, 'compensation', 1, 1, 'accepted', "
                    "false, '[]', 1)"
                ),
                {"user_id": user_id},
            )

    await asyncio.to_thread(upgrade, "wee5_benchmarks", url, "head")

    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT user_id, owner FROM benchmarks.submissions ORDER BY user_id")
        )
        owners = {row.user_id: row.owner for row in rows}
    assert owners == {
        ACCOUNT: f"account:{ACCOUNT}",
        "user_abc": "whop:user_abc",
        "123456789012345678": None,
        "userx": None,
    }
