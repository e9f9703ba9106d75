"""The MEE6 sync task against a local server speaking MEE6's leaderboard API: growth becomes
points once, remainders carry over, concurrent runs are safe, failures exit non-zero."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.providers import STALL, FakeMee6
from tests.xp.support_tasks import ledger, run_task, run_task_process, totals
from wee5_xp.models import Mee6Link, Mee6SyncedMember

Sessions = async_sessionmaker[AsyncSession]


def snowflake() -> str:
    return str(random.randrange(10**17, 10**18))


@pytest.fixture
def mee6() -> Iterator[FakeMee6]:
    fake = FakeMee6()
    with fake.running():
        yield fake


@pytest.fixture
def guild() -> str:
    return snowflake()


async def sync(mee6: FakeMee6, *argv: str) -> int:
    # Always one community: other tests' links stay in the run's database.
    return await run_task("mee6-sync", *argv, mee6_api_url=mee6.url, mee6_page_size=2)


async def test_first_sync_takes_a_snapshot_then_growth_becomes_points_once(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    a, b, c = snowflake(), snowflake(), snowflake()
    mee6.set_player(guild, a, 5_000)
    mee6.set_player(guild, b, 1_000)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    assert await ledger(sessionmaker, community_id) == []

    mee6.set_player(guild, a, 5_250)  # +250: 2 points, 50 left over
    mee6.set_player(guild, b, 1_099)  # +99: nothing yet
    mee6.set_player(guild, c, 120)  # new on the board: +120, 1 point, 20 left over
    assert await sync(mee6, "--community", community_id) == 0
    assert await sync(mee6, "--community", community_id) == 0  # nothing changed: no more points

    assert sorted(await ledger(sessionmaker, community_id)) == sorted(
        [(a, 2, "mee6_sync"), (c, 1, "mee6_sync")]
    )

    mee6.set_player(guild, a, 5_300)  # +50 with the 50 kept: one more point
    mee6.set_player(guild, b, 1_100)  # +1 with the 99 kept: one point
    assert await sync(mee6, "--community", community_id) == 0
    assert await totals(sessionmaker, community_id) == {a: 3, b: 1, c: 1}
    async with sessionmaker() as session:
        state = {
            row.user_id: (row.xp_seen, row.xp_counted)
            for row in await session.scalars(
                select(Mee6SyncedMember).where(Mee6SyncedMember.community_id == community_id)
            )
        }
    assert state == {a: (5_300, 5_300), b: (1_100, 1_100), c: (120, 100)}


async def test_several_pages_are_all_synced(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    players = [snowflake() for _ in range(5)]
    for player in players:
        mee6.set_player(guild, player, 1_000)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    for player in players:
        mee6.set_player(guild, player, 1_200)
    mee6.requests.clear()

    assert await sync(mee6, "--community", community_id) == 0

    assert await totals(sessionmaker, community_id) == {player: 2 for player in players}
    # Pages of 2: 2 + 2 + 1, the short page ends it.
    assert [r.query["page"] for r in mee6.requests] == ["0", "1", "2"]


async def test_concurrent_syncs_give_points_once(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    players = [snowflake() for _ in range(6)]
    for player in players:
        mee6.set_player(guild, player, 0)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    for player in players:
        mee6.set_player(guild, player, 700)

    codes = await asyncio.gather(*(sync(mee6, "--community", community_id) for _ in range(3)))

    assert codes == [0, 0, 0]
    assert await totals(sessionmaker, community_id) == {player: 7 for player in players}


async def test_mee6_reset_gives_nothing_and_counts_from_the_new_number(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    player = snowflake()
    mee6.set_player(guild, player, 10_000)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    mee6.set_player(guild, player, 30)  # reset in MEE6
    assert await sync(mee6, "--community", community_id) == 0
    mee6.set_player(guild, player, 230)
    assert await sync(mee6, "--community", community_id) == 0

    assert await ledger(sessionmaker, community_id) == [(player, 2, "mee6_sync")]


async def test_relinking_to_another_guild_starts_with_a_snapshot(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    other = snowflake()
    player = snowflake()
    mee6.set_player(guild, player, 100)
    mee6.set_player(other, player, 9_000)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    assert await sync(mee6, "--community", community_id, "--guild", other) == 0

    assert await ledger(sessionmaker, community_id) == []
    async with sessionmaker() as session:
        link = await session.get(Mee6Link, community_id)
    assert link is not None
    assert (link.guild_id, link.synced_at is not None) == (other, True)


async def test_unlink_stops_the_sync(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    mee6.set_player(guild, snowflake(), 100)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    assert await sync(mee6, "--community", community_id, "--unlink") == 0
    assert await sync(mee6, "--community", community_id) == 2
    async with sessionmaker() as session:
        assert await session.get(Mee6Link, community_id) is None


async def test_sync_retries_5xx_and_429_then_succeeds(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    player = snowflake()
    mee6.set_player(guild, player, 0)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    mee6.set_player(guild, player, 300)
    mee6.requests.clear()
    mee6.fail_next(502)
    mee6.fail_next(429, retry_after="0")
    mee6.fail_next(503)

    assert await sync(mee6, "--community", community_id) == 0

    assert [r.status for r in mee6.requests] == [502, 429, 503, 200]
    assert await totals(sessionmaker, community_id) == {player: 3}


async def test_a_hanging_request_times_out_and_is_retried(
    mee6: FakeMee6, guild: str, community_id: str, sessionmaker: Sessions
) -> None:
    player = snowflake()
    mee6.set_player(guild, player, 0)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    mee6.set_player(guild, player, 100)
    mee6.requests.clear()
    mee6.stall_next(2.0)

    code = await run_task(
        "mee6-sync",
        "--community",
        community_id,
        mee6_api_url=mee6.url,
        provider_timeout_seconds=0.5,
    )

    assert code == 0
    assert [r.status for r in mee6.requests] == [STALL, 200]
    assert await totals(sessionmaker, community_id) == {player: 1}


async def test_sync_task_exits_non_zero_when_mee6_keeps_failing(
    mee6: FakeMee6, guild: str, community_id: str, test_env: dict[str, str], database_url: str
) -> None:
    mee6.set_player(guild, snowflake(), 100)
    assert await sync(mee6, "--community", community_id, "--guild", guild) == 0
    mee6.fail_next(500, times=10)

    finished = await run_task_process(
        test_env, "mee6-sync", "--community", community_id, mee6_api_url=mee6.url
    )

    assert finished.code == 1
    assert "mee6 sync failed" in finished.stdout + finished.stderr


async def test_private_leaderboard_fails_the_task_without_retrying(
    mee6: FakeMee6, guild: str, community_id: str, database_url: str
) -> None:
    # database_url: the task opens the run's database (migrated, named in WEE5_DATABASE_URL).
    mee6.set_player(guild, snowflake(), 100)
    mee6.private.add(guild)

    assert await sync(mee6, "--community", community_id, "--guild", guild) == 1
    assert [r.status for r in mee6.requests] == [401]


async def test_bad_guild_id_is_a_usage_error(mee6: FakeMee6, community_id: str) -> None:
    assert await sync(mee6, "--community", community_id, "--guild", "not-a-guild") == 2
    assert await sync(mee6, "--guild", "123") == 2
    assert mee6.requests == []
