"""The ledger and what is derived from it: the award entry point's idempotency, admin
adjustments, history pages, streaks, and the reconcile and close-streaks tasks."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.xp.conftest import MakeServicer
from tests.xp.test_boards import Clock, _delete_boards, board, earn, entries
from tests.xp.test_record_activity import outbox_events
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2
from wee5_kit.redis import Keys
from wee5_xp import leaderboards
from wee5_xp.awards import Award
from wee5_xp.errors import AdjustmentBelowZero, InvalidAdjustment, MemberNotFound
from wee5_xp.leaderboards import Leaderboards, Score
from wee5_xp.levels import preset
from wee5_xp.maintenance import close_streaks, reconcile
from wee5_xp.models import LedgerEntry, Member, PeriodXp
from wee5_xp.repository import XpRepository
from wee5_xp.repository import members as members_repository
from wee5_xp.servicer import XpServicer

Sessions = async_sessionmaker[AsyncSession]


async def adjust(
    xp: XpServicer, community_id: str, delta: int, key: str | None = None
) -> xp_pb2.AdjustXpResponse:
    request = xp_pb2.AdjustXpRequest(
        community_id=community_id,
        user_id="user_a",
        delta=delta,
        reason="spam cleanup",
        actor_user_id="acct_admin",
        idempotency_key=key or uuid.uuid4().hex,
    )
    return await xp.AdjustXp(request, None)  # type: ignore[arg-type]


async def card(xp: XpServicer, community_id: str, user_id: str = "user_a") -> xp_pb2.Member:
    request = xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
    return (await xp.GetMember(request, None)).member  # type: ignore[arg-type]


async def ledger_of(sessions: Sessions, community_id: str) -> list[tuple[int, str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.delta, LedgerEntry.reason, LedgerEntry.balance_after)
            .where(LedgerEntry.community_id == community_id)
            .order_by(LedgerEntry.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_points_through_the_award_entry_point_count_once_per_key(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp()
    points = Award(
        community_id=community_id,
        user_id="user_a",
        delta=50,
        reason="benchmark_submitted",
        source="benchmarks",
        idempotency_key="bench:sub_1",
    )

    async def give() -> bool:
        async with xp.service.transaction() as session:
            return (await xp.service.award(session, points)).duplicate

    duplicates = await asyncio.gather(*(give() for _ in range(4)))

    assert sorted(duplicates) == [False, True, True, True]
    assert await ledger_of(sessionmaker, community_id) == [(50, "benchmark_submitted", 50)]
    member = await card(xp, community_id)
    assert (member.xp, member.totals.messages) == (50, 0)
    assert entries(await board(xp, community_id)) == [(1, "user_a", 50)]


async def test_an_adjustment_can_lower_the_level_and_regaining_it_is_not_announced(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp()
    raised = await adjust(xp, community_id, 300)  # level 3 (255)
    lowered = await adjust(xp, community_id, -250, key="cleanup-1")
    again = await adjust(xp, community_id, -250, key="cleanup-1")
    regained = await adjust(xp, community_id, 250)

    assert (raised.total_xp, raised.level, raised.previous_level) == (300, 3, 1)
    assert (lowered.total_xp, lowered.level, lowered.previous_xp) == (50, 1, 300)
    assert again.duplicate
    assert again.total_xp == 50
    assert (regained.total_xp, regained.level) == (300, 3)
    level_ups = []
    for payload in await outbox_events(sessionmaker, community_id, "xp.level_up"):
        event = events_pb2.LevelUp()
        event.ParseFromString(payload)
        level_ups.append((event.from_level, event.to_level))
    assert level_ups == [(1, 3)]
    assert await ledger_of(sessionmaker, community_id) == [
        (300, "adjustment:spam cleanup", 300),
        (-250, "adjustment:spam cleanup", 50),
        (250, "adjustment:spam cleanup", 300),
    ]


async def test_an_adjustment_below_zero_or_without_reason_is_refused(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp()
    await adjust(xp, community_id, 10)
    with pytest.raises(AdjustmentBelowZero):
        await adjust(xp, community_id, -11)
    with pytest.raises(InvalidAdjustment):
        await xp.AdjustXp(
            xp_pb2.AdjustXpRequest(
                community_id=community_id, user_id="user_a", delta=5, idempotency_key="k"
            ),
            None,  # type: ignore[arg-type]
        )
    assert (await card(xp, community_id)).xp == 10
    assert len(await ledger_of(sessionmaker, community_id)) == 1


async def test_history_pages_the_ledger_newest_first(
    make_xp: MakeServicer, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_a", 4)
    await adjust(xp, community_id, -30)
    pages: list[xp_pb2.GetHistoryResponse] = []
    token = ""
    while True:
        reply = await xp.GetHistory(
            xp_pb2.GetHistoryRequest(
                community_id=community_id, user_id="user_a", page_size=2, page_token=token
            ),
            None,  # type: ignore[arg-type]
        )
        pages.append(reply)
        token = reply.next_page_token
        if not token:
            break

    rows = [(e.delta, e.balance_after, e.source_name) for p in pages for e in p.entries]
    assert [len(p.entries) for p in pages] == [2, 2, 1]
    assert rows == [
        (-30, 50, "admin"),
        (20, 80, "whop"),
        (20, 60, "whop"),
        (20, 40, "whop"),
        (20, 20, "whop"),
    ]
    assert pages[0].entries[0].actor == "acct_admin"
    with pytest.raises(MemberNotFound):
        await xp.GetHistory(
            xp_pb2.GetHistoryRequest(community_id=community_id, user_id="nobody"),
            None,  # type: ignore[arg-type]
        )


async def test_streaks_count_consecutive_active_days_and_the_task_closes_broken_ones(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    clock = Clock("2026-11-01T10:00:00")
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    for day in ("2026-11-01T10:00", "2026-11-01T22:00", "2026-11-02T08:00", "2026-11-03T23:59"):
        clock.set(day)
        await earn(xp, community_id, "user_a")
    three = await card(xp, community_id)
    clock.set("2026-11-06T09:00")  # two days missed
    await earn(xp, community_id, "user_a")
    restarted = await card(xp, community_id)
    await earn(xp, community_id, "user_b")
    clock.set("2026-11-08T09:00")
    shown_broken = await card(xp, community_id)
    closed = await close_streaks(xp.service, clock())

    assert (three.streak_days, three.longest_streak_days) == (3, 3)
    assert (restarted.streak_days, restarted.longest_streak_days) == (1, 3)
    assert shown_broken.streak_days == 0  # the card knows before the task runs
    assert closed >= 2
    async with sessionmaker() as session:
        streaks = (
            await session.execute(
                select(Member.user_id, Member.current_streak, Member.longest_streak)
                .where(Member.community_id == community_id)
                .order_by(Member.user_id)
            )
        ).all()
    assert [tuple(s) for s in streaks] == [("user_a", 0, 3), ("user_b", 0, 1)]
    assert restarted.last_activity_at.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 6, 9, tzinfo=UTC)


async def test_reconcile_repairs_totals_and_periods_that_drifted_from_the_ledger(
    make_xp: MakeServicer, sessionmaker: Sessions, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_a", 3)
    await earn(xp, community_id, "user_b", 1)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Member)
            .where(Member.community_id == community_id, Member.user_id == "user_a")
            .values(xp=9999, messages=1, level=42)
        )
        await session.execute(
            update(PeriodXp)
            .where(PeriodXp.community_id == community_id, PeriodXp.user_id == "user_b")
            .values(xp=7)
        )

    report = await reconcile(xp.service)

    assert report.members_repaired >= 1
    assert report.periods_repaired >= 3
    assert report.levels_repaired >= 1
    member = await card(xp, community_id)
    assert (member.xp, member.totals.messages, member.level) == (60, 3, 1)
    async with sessionmaker() as session:
        periods = set(
            await session.scalars(
                select(PeriodXp.xp).where(
                    PeriodXp.community_id == community_id, PeriodXp.user_id == "user_b"
                )
            )
        )
        totals = (
            await session.execute(
                select(Member.user_id, Member.xp).where(Member.community_id == community_id)
            )
        ).all()
        sums = (
            await session.execute(
                select(LedgerEntry.user_id, func.sum(LedgerEntry.delta))
                .where(LedgerEntry.community_id == community_id)
                .group_by(LedgerEntry.user_id)
            )
        ).all()
    assert periods == {20}
    assert sorted(map(tuple, totals)) == sorted(map(tuple, sums))
    assert entries(await board(xp, community_id)) == [(1, "user_a", 60), (2, "user_b", 20)]


async def test_boards_deleted_from_redis_come_back_identical_after_reconcile(
    make_xp: MakeServicer, redis: Redis, community_id: str, test_env: dict[str, str]
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    clock = Clock((now - timedelta(days=2)).isoformat())
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    for n in range(6):
        await earn(xp, community_id, f"user_{n % 4}", 1 + n % 3)  # ties included
    clock.set(now.isoformat())
    for n in range(4):
        await earn(xp, community_id, f"user_{n}", 4 - n)
    prefix = f"{test_env['WEE5_REDIS_PREFIX']}:lb:{community_id}:"
    keys = sorted([k async for k in redis.scan_iter(match=f"{prefix}*") if _is_board(prefix, k)])
    before = {k: await redis.zrange(k, 0, -1, withscores=True) for k in keys}
    assert len(keys) >= 5  # all time, this day/week/month and the day before yesterday

    deleted = await _delete_boards(redis, test_env, community_id)
    report = await reconcile(xp.service)
    after = {k: await redis.zrange(k, 0, -1, withscores=True) for k in keys}
    await reconcile(xp.service)  # nothing left to repair

    assert deleted >= 10
    assert after == before
    assert report.board_drift > 0
    # Reconcile found this community's boards missing. (A reader may rebuild the current
    # ones first, e.g. another process of the run asking xp for a member's card after one of
    # these level-ups: the day before yesterday's board is left to reconcile.)
    assert f"{prefix}day:{(now - timedelta(days=2)).date().isoformat()}" in report.drifted_boards
    assert (await reconcile(xp.service)).board_drift == 0


async def _drop_rows(sessions: Sessions, community_id: str, user_id: str | None = None) -> None:
    """Deletes what Postgres has of a community (or of one of its members), as dropping the
    local database does, and leaves Redis alone."""
    who = "community_id = :c" + (" AND user_id = :u" if user_id else "")
    async with sessions.begin() as session:
        for table in ("xp.period_xp", "xp.ledger", "xp.activities", "xp.members"):
            await session.execute(
                text(f"DELETE FROM {table} WHERE {who}"), {"c": community_id, "u": user_id}
            )


async def _board_entries(redis: Redis, test_env: dict[str, str], community_id: str) -> int:
    prefix = f"{test_env['WEE5_REDIS_PREFIX']}:lb:{community_id}:"
    return sum(
        [
            await redis.zcard(key)
            async for key in redis.scan_iter(match=f"{prefix}*")
            if _is_board(prefix, key)
        ]
    )


def _is_board(prefix: str, key: str) -> bool:
    """A board's own key (`…:all`, `…:week:2026-11-30`): not its index, its cached size, nor a
    rebuild's lease or the board it builds (a reader may be rebuilding one meanwhile)."""
    return (
        re.fullmatch(rf"{re.escape(prefix)}(all|(day|week|month):\d{{4}}-\d\d-\d\d)", key)
        is not None
    )


async def test_reconcile_removes_board_entries_postgres_no_longer_has_and_reports_them(
    make_xp: MakeServicer, sessionmaker: Sessions, redis: Redis, test_env: dict[str, str]
) -> None:
    gone, kept = f"exp_{uuid.uuid4().hex[:12]}", f"exp_{uuid.uuid4().hex[:12]}"
    xp = make_xp(xp_cooldown_seconds=0)
    await earn(xp, gone, "user_a", 3)
    await earn(xp, gone, "user_b", 1)
    await earn(xp, kept, "user_a", 2)
    await earn(xp, kept, "user_b", 1)
    assert await _board_entries(redis, test_env, gone) == 8  # two members on four boards

    await _drop_rows(sessionmaker, gone)
    await _drop_rows(sessionmaker, kept, "user_b")
    report = await reconcile(xp.service)

    assert await _board_entries(redis, test_env, gone) == 0
    assert entries(await board(xp, gone)) == []
    assert entries(await board(xp, kept)) == [(1, "user_a", 40)]
    prefix = test_env["WEE5_REDIS_PREFIX"]
    assert {f"{prefix}:lb:{gone}:all", f"{prefix}:lb:{kept}:all"} <= set(report.drifted_boards)
    assert report.board_drift >= 8 + 4
    assert not {b for b in (await reconcile(xp.service)).drifted_boards if gone in b or kept in b}


async def test_two_reconciles_at_once_both_finish(make_xp: MakeServicer, community_id: str) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_a", 2)
    first, second = await asyncio.gather(reconcile(xp.service), reconcile(xp.service))
    assert first.members_repaired == second.members_repaired == 0


def _run_task(job: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wee5_xp.tasks", job],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_task_commands_exit_zero_on_success_and_non_zero_on_failure(
    database_url: str, test_env: dict[str, str]
) -> None:
    ok = await asyncio.to_thread(_run_task, "close-streaks", test_env)
    broken = await asyncio.to_thread(
        _run_task,
        "reconcile",
        {**test_env, "WEE5_DATABASE_URL": database_url.replace("wee5_test_", "wee5_missing_")},
    )
    unknown = await asyncio.to_thread(_run_task, "make-coffee", test_env)

    assert ok.returncode == 0, ok.stderr
    assert broken.returncode == 1
    assert unknown.returncode == 2


@pytest.mark.parametrize("preset_name", ["default", "mee6", "linear", "cubic"])
async def test_postgres_picks_out_exactly_the_members_whose_level_the_curve_moves(
    sessionmaker: Sessions, community_id: str, preset_name: str
) -> None:
    curve = preset(preset_name, max_level=12).curve()
    xps = {-5, 0, 1, 10**12}  # below the curve, at its start, past its last level
    for level in range(curve.first_level, 13):
        xps |= {curve.xp_for_level(level) + d for d in (-1, 0, 1)}
    wrong: list[str] = []  # every other member, stored a level too high or too low
    async with sessionmaker.begin() as session:
        for n, xp in enumerate(sorted(xps)):
            level = curve.level_for(xp)
            stored = level if n % 2 else level + (1 if n % 4 else -1)
            if stored != level:
                wrong.append(f"user_{n:03}")
            session.add(
                Member(community_id=community_id, user_id=f"user_{n:03}", xp=xp, level=stored)
            )

    async with sessionmaker.begin() as session:
        first = await XpRepository(session).wrong_levels(community_id, curve, "", 3)
        rest = await XpRepository(session).wrong_levels(
            community_id, curve, first[-1].user_id, 1000
        )

    found = [m.user_id for m in first + rest]
    assert found == wrong
    assert all(curve.level_for(m.xp) != m.level for m in first + rest)


async def test_a_board_larger_than_a_chunk_is_rebuilt_whole_and_its_drift_counted(
    make_xp: MakeServicer,
    redis: Redis,
    community_id: str,
    test_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leaderboards, "CHUNK", 2)
    monkeypatch.setattr(members_repository, "SCORES_PER_CHUNK", 3)
    xp = make_xp(xp_cooldown_seconds=0)
    for n in range(7):
        await earn(xp, community_id, f"user_{n}", 1 + n % 3)
    key = f"{test_env['WEE5_REDIS_PREFIX']}:lb:{community_id}:all"
    before = await redis.zrevrange(key, 0, -1, withscores=True)
    last = str(before[-1][0])
    await redis.zadd(key, {last: 1000})  # the last member jumps to the top: 7 positions move

    report = await reconcile(xp.service)

    assert await redis.zrevrange(key, 0, -1, withscores=True) == before
    assert key in report.drifted_boards
    assert report.board_drift == 7
    assert report.board_seconds[key] >= 0  # each board's rebuild is timed
    assert [k async for k in redis.scan_iter(match=f"{key}:tmp:*")] == []


async def test_a_lost_board_is_rebuilt_once_in_the_background_while_its_readers_go_on(
    redis: Redis, test_env: dict[str, str]
) -> None:
    boards = Leaderboards(redis, Keys(test_env["WEE5_REDIS_PREFIX"]))
    key = boards.board_key(f"exp_{uuid.uuid4().hex[:12]}", "all", None)
    started, release = asyncio.Event(), asyncio.Event()
    loads = 0

    async def load() -> AsyncIterator[list[Score]]:
        nonlocal loads
        loads += 1
        started.set()
        await release.wait()
        yield [Score("user_a", 30, datetime(2026, 11, 1, tzinfo=UTC))]

    assert not await boards.ready(key, "all", load)  # answered at once: read Postgres
    await started.wait()
    assert [await boards.ready(key, "all", load) for _ in range(3)] == [False] * 3
    assert await boards.page(key, 0, 10) == []  # nothing half-built is live
    rebuild = boards.rebuilding(key)
    assert rebuild is not None
    release.set()
    rebuilt = await rebuild

    assert loads == 1
    assert rebuilt is not None
    assert rebuilt.members == 1
    assert await boards.ready(key, "all", load)
    assert await boards.page(key, 0, 10) == [("user_a", 30)]
    assert await redis.exists(boards.lease_key(key), boards.building_key(key)) == 0


async def test_a_rebuild_whose_board_was_forgotten_midway_writes_and_swaps_in_nothing(
    redis: Redis, test_env: dict[str, str]
) -> None:
    """A member hid (every board of the community is forgotten) while a rebuild from the
    older snapshot ran: the rebuild begun after it is the board, nothing of the older one,
    even when the older one goes on while the newer one is half-way."""
    boards = Leaderboards(redis, Keys(test_env["WEE5_REDIS_PREFIX"]))
    other = Leaderboards(redis, Keys(test_env["WEE5_REDIS_PREFIX"]))  # another replica
    community_id = f"exp_{uuid.uuid4().hex[:12]}"
    key = boards.board_key(community_id, "all", None)
    reached = datetime(2026, 11, 1, tzinfo=UTC)
    older_paused, older_go_on = asyncio.Event(), asyncio.Event()
    newer_paused, newer_go_on = asyncio.Event(), asyncio.Event()

    async def before_hiding() -> AsyncIterator[list[Score]]:
        yield [Score("user_a", 30, reached)]
        older_paused.set()
        await older_go_on.wait()
        yield [Score("user_hidden", 50, reached)]

    async def after_hiding() -> AsyncIterator[list[Score]]:
        yield [Score("user_a", 30, reached)]
        newer_paused.set()
        await newer_go_on.wait()
        yield [Score("user_b", 10, reached)]

    assert not await boards.ready(key, "all", before_hiding)
    older = boards.rebuilding(key)
    assert older is not None
    await older_paused.wait()
    await boards.forget(community_id)
    assert not await other.ready(key, "all", after_hiding)
    await newer_paused.wait()
    older_go_on.set()  # the older rebuild writes its next chunk while the newer one runs
    assert await older is None  # abandoned
    newer_go_on.set()
    await other.settled()

    assert await boards.page(key, 0, 10) == [("user_a", 30), ("user_b", 10)]
    assert await boards.ready(key, "all", before_hiding)
