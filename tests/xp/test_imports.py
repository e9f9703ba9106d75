"""Imports: the ImportMembers RPC over gRPC, the import-mee6 task against a local server
speaking MEE6's leaderboard API, and JSON/CSV exports through import-file."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.providers import FakeMee6
from tests.xp.support_tasks import ledger, run_task, totals
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_xp.models import ImportedXp, Member, outbox
from wee5_xp.repository import SyncStateRepository

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub as Stub

Sessions = async_sessionmaker[AsyncSession]


def snowflake() -> str:
    return str(random.randrange(10**17, 10**18))


async def import_members(
    stub: Stub, community_id: str, *members: tuple[str, int, int], source: int = xp_pb2.SOURCE_MEE6
) -> int:
    response = await stub.ImportMembers(
        xp_pb2.ImportMembersRequest(
            community_id=community_id,
            source=source,  # type: ignore[arg-type]
            members=[
                xp_pb2.ImportedMember(user_id=user, xp=xp, message_count=messages)
                for user, xp, messages in members
            ],
        ),
        timeout=10,
    )
    return response.imported


async def levels(sessions: Sessions, community_id: str) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.scalars(select(Member).where(Member.community_id == community_id))
        return {row.user_id: row.level for row in rows}


async def test_importing_twice_changes_nothing_and_newer_numbers_add_the_difference(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    data = [("a", 4_675, 300), ("b", 100, 7), ("c", 0, 0)]
    assert await import_members(xp_grpc, community_id, *data) == 2
    assert await import_members(xp_grpc, community_id, *data) == 0

    assert await totals(sessionmaker, community_id) == {"a": 4_675, "b": 100}
    # Levels from WEE5's curve (default: level 11 at 4,675 XP), not copied from MEE6.
    assert await levels(sessionmaker, community_id) == {"a": 11, "b": 2}

    # a gained 325 in MEE6; b's MEE6 number went down, which takes nothing back.
    assert await import_members(xp_grpc, community_id, ("a", 5_000, 320), ("b", 50, 7)) == 1
    assert await totals(sessionmaker, community_id) == {"a": 5_000, "b": 100}
    assert await ledger(sessionmaker, community_id) == [
        ("a", 4_675, "import"),
        ("b", 100, "import"),
        ("a", 325, "import"),
    ]
    async with sessionmaker() as session:
        kept = {
            row.user_id: (row.xp, row.message_count)
            for row in await session.scalars(
                select(ImportedXp).where(ImportedXp.community_id == community_id)
            )
        }
    assert kept == {"a": (5_000, 320), "b": (100, 7), "c": (0, 0)}


async def test_concurrent_imports_of_the_same_numbers_count_once(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    data = [(f"m{n}", 100 * n, n) for n in range(1, 21)]

    counts = await asyncio.gather(*(import_members(xp_grpc, community_id, *data) for _ in range(3)))

    assert sorted(counts) == [0, 0, 20]
    assert await totals(sessionmaker, community_id) == {user: xp for user, xp, _ in data}


async def test_imported_history_counts_all_time_and_announces_no_level_up(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    await import_members(xp_grpc, community_id, ("a", 4_675, 0))

    async with sessionmaker() as session:
        rows = (await session.execute(select(outbox.c.subject, outbox.c.payload))).all()
    mine = []
    for row in rows:
        event = events_pb2.LevelUp() if row.subject == "xp.level_up" else events_pb2.XpAwarded()
        event.ParseFromString(row.payload)
        if event.meta.community_id == community_id:
            mine.append((row.subject, getattr(event, "reason", "")))
    assert mine == [("xp.awarded", "import")]

    def board(period: int) -> xp_pb2.GetLeaderboardRequest:
        return xp_pb2.GetLeaderboardRequest(community_id=community_id, period=period)  # type: ignore[arg-type]

    all_time = await xp_grpc.GetLeaderboard(board(xp_pb2.PERIOD_ALL), timeout=5)
    week = await xp_grpc.GetLeaderboard(board(xp_pb2.PERIOD_WEEK), timeout=5)
    assert [(e.user_id, e.xp, e.level) for e in all_time.entries] == [("a", 4_675, 11)]
    assert list(week.entries) == []


async def test_reconcile_keeps_imported_xp_off_the_period_boards(
    xp_grpc: Stub, community_id: str
) -> None:
    await import_members(xp_grpc, community_id, ("a", 300, 0))

    assert await run_task("reconcile") == 0

    def board(period: int) -> xp_pb2.GetLeaderboardRequest:
        return xp_pb2.GetLeaderboardRequest(community_id=community_id, period=period)  # type: ignore[arg-type]

    all_time = await xp_grpc.GetLeaderboard(board(xp_pb2.PERIOD_ALL), timeout=5)
    day = await xp_grpc.GetLeaderboard(board(xp_pb2.PERIOD_DAY), timeout=5)
    assert [(e.user_id, e.xp) for e in all_time.entries] == [("a", 300)]
    assert list(day.entries) == []


async def test_imported_xp_adds_to_xp_earned_here(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    await xp_grpc.AwardPoints(
        xp_pb2.AwardPointsRequest(
            community_id=community_id, user_id="a", reason="intro", idempotency_key="intro:a"
        ),
        timeout=5,
    )
    await import_members(xp_grpc, community_id, ("a", 1_000, 0))

    assert await totals(sessionmaker, community_id) == {"a": 1_025}


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([("a", 10, 0), ("a", 20, 0)], "appears twice"),
        ([("a", -1, 0)], "xp must be"),
        ([("", 1, 0)], "user_id"),
        ([(str(n), 1, 0) for n in range(1001)], "at most 1000"),
    ],
)
async def test_invalid_imports_are_refused_whole(
    xp_grpc: Stub,
    community_id: str,
    sessionmaker: Sessions,
    members: list[tuple[str, int, int]],
    message: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await import_members(xp_grpc, community_id, ("ok", 5, 0), *members)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (raised.value.details() or "")
    assert await totals(sessionmaker, community_id) == {}


async def test_import_without_source_is_refused(xp_grpc: Stub, community_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await import_members(xp_grpc, community_id, ("a", 5, 0), source=xp_pb2.SOURCE_UNSPECIFIED)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_mee6_import_into_a_synced_community_is_refused(
    xp_grpc: Stub, community_id: str, sessionmaker: Sessions
) -> None:
    async with sessionmaker.begin() as session:
        await SyncStateRepository(session).link_mee6(community_id, snowflake())

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await import_members(xp_grpc, community_id, ("a", 5, 0))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Another source is a separate history and may still be imported.
    assert await import_members(xp_grpc, community_id, ("a", 5, 0), source=xp_pb2.SOURCE_API) == 1


@pytest.fixture
def mee6() -> Iterator[FakeMee6]:
    fake = FakeMee6()
    with fake.running():
        yield fake


async def test_import_mee6_reads_every_page_once(
    mee6: FakeMee6, community_id: str, sessionmaker: Sessions
) -> None:
    guild = snowflake()
    players = {snowflake(): 100 * (n + 1) for n in range(25)}
    for user, xp in players.items():
        mee6.set_player(guild, user, xp, message_count=xp // 20)

    async def import_mee6() -> int:
        return await run_task(
            "import-mee6", "--community", community_id, "--guild", guild,
            mee6_api_url=mee6.url, mee6_page_size=10,
        )  # fmt: skip

    assert await import_mee6() == 0
    assert [(r.query["page"], r.query["limit"]) for r in mee6.requests] == [
        ("0", "10"),
        ("1", "10"),
        ("2", "10"),
    ]
    assert await totals(sessionmaker, community_id) == players

    assert await import_mee6() == 0  # the same numbers again: nothing changes
    assert len(await ledger(sessionmaker, community_id)) == 25

    leader = max(players, key=lambda user: players[user])
    mee6.set_player(guild, leader, players[leader] + 777)
    assert await import_mee6() == 0
    assert (await totals(sessionmaker, community_id))[leader] == players[leader] + 777
    assert (await ledger(sessionmaker, community_id))[-1] == (leader, 777, "import")


async def test_import_mee6_of_a_private_leaderboard_fails(
    mee6: FakeMee6, community_id: str, sessionmaker: Sessions
) -> None:
    guild = snowflake()
    mee6.set_player(guild, snowflake(), 100)
    mee6.private.add(guild)

    code = await run_task(
        "import-mee6", "--community", community_id, "--guild", guild, mee6_api_url=mee6.url
    )

    assert code == 1
    assert await totals(sessionmaker, community_id) == {}


async def test_import_file_reads_a_mee6_json_page_and_a_csv_export(
    tmp_path: Path, community_id: str, sessionmaker: Sessions
) -> None:
    page = tmp_path / "leaderboard.json"
    page.write_text(
        json.dumps(
            {
                "page": 0,
                "players": [
                    {"id": "111", "xp": 1_150, "level": 5, "message_count": 60, "username": "x"},
                    {"id": "222", "xp": 255, "level": 2, "message_count": 12, "username": "y"},
                ],
            }
        )
    )
    export = tmp_path / "export.csv"
    export.write_text("user_id,xp,message_count\n111,1200,62\n333,40,2\n")

    assert await run_task("import-file", "--community", community_id, str(page)) == 0
    assert await run_task("import-file", "--community", community_id, str(export)) == 0
    assert await run_task("import-file", "--community", community_id, str(export)) == 0

    assert await totals(sessionmaker, community_id) == {"111": 1_200, "222": 255, "333": 40}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.csv", "user_id,xp\n111,100\n222,lots\n"),
        ("bad.csv", "name,points\nx,1\n"),
        ("bad.json", '{"players": [{"id": "111", "xp": 10}, {"xp": 5}]}'),
        ("bad.json", "{not json"),
    ],
)
async def test_an_invalid_export_imports_nothing_and_exits_2(
    tmp_path: Path, community_id: str, sessionmaker: Sessions, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)

    assert await run_task("import-file", "--community", community_id, str(path)) == 2
    assert await totals(sessionmaker, community_id) == {}
