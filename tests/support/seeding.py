"""Members of one community seeded straight into xp's tables by COPY, as an import would
leave them (`make bench-scale` at a million, tests/xp/test_board_rebuild.py at 200,000): each
with imported XP (a message's 20 XP times a heavy-tailed number of messages, so half the
members share the lowest score, as in a real community), the level the default curve gives
it, a reach time of its own, and the one `import` ledger entry that explains it, so the read
model agrees with the ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import make_url

from wee5_xp.levels import DEFAULT_CURVE

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MEMBER_COLUMNS = ["community_id", "user_id", "xp", "level", "highest_level", "messages", "posts"]
MEMBER_COLUMNS += ["reactions", "custom", "reached_at", "created_at", "updated_at"]
LEDGER_COLUMNS = ["community_id", "user_id", "delta", "reason", "source", "balance_after"]
LEDGER_COLUMNS += ["level_before", "level_after", "day", "created_at"]


def xp_of(index: int) -> int:
    """20 XP a message times messages sent, heavy-tailed and in no order by index: half the
    members sent one, a quarter two, ..., the most active 10,000."""
    share = ((index * 2_654_435_761) % 1_000_003 + 1) / 1_000_004  # in (0, 1)
    return 20 * min(10_000, int(0.5 / share) + 1)


def members(community: str, count: int) -> Iterator[tuple[object, ...]]:
    for index in range(count):
        xp = xp_of(index)
        level = DEFAULT_CURVE.level_for(xp)
        # A reach time of its own per member: the board's tie-break is deterministic.
        reached = EPOCH + timedelta(milliseconds=index)
        yield (community, f"user_{index}", xp, level, level, 0, 0, 0, 0, reached, reached, reached)


def ledger(community: str, count: int) -> Iterator[tuple[object, ...]]:
    first = DEFAULT_CURVE.first_level
    for index in range(count):
        xp = xp_of(index)
        reached = EPOCH + timedelta(milliseconds=index)
        level = DEFAULT_CURVE.level_for(xp)
        yield (community, f"user_{index}", xp, "import", "mee6", xp, first, level, reached.date(), reached)  # fmt: skip


async def seed(url: str, community: str, count: int) -> float:
    """COPY of `count` members and their import entries (the two tables at once, on two
    connections) into the database at `url`; returns the seconds it took."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    started = time.perf_counter()
    await asyncio.gather(
        copy(dsn, "members", MEMBER_COLUMNS, members(community, count)),
        copy(dsn, "ledger", LEDGER_COLUMNS, ledger(community, count)),
    )
    return time.perf_counter() - started


async def unseed(url: str, community: str) -> None:
    """Removes every row of `community` from xp's member tables (what `seed` and a test's
    awards wrote)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        for table in ("ledger", "period_xp", "activities", "members"):
            await conn.execute(f"DELETE FROM xp.{table} WHERE community_id = $1", community)
    finally:
        await conn.close()


async def copy(
    dsn: str, table: str, columns: list[str], rows: Iterator[tuple[object, ...]]
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(table, schema_name="xp", columns=columns, records=rows)
        await conn.execute(f"ANALYZE xp.{table}")
    finally:
        await conn.close()
