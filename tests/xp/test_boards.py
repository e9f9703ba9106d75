"""Time-windowed boards: day/week/month boundaries in the community's time zone, past periods,
ties going to whoever got there first, cursor pages, and boards rebuilt from Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.xp.conftest import MakeServicer
from wee5.xp.v1 import xp_pb2
from wee5_kit.redis import Keys
from wee5_xp.awards import ActivityInput
from wee5_xp.errors import InvalidCursor, InvalidLeaderboardRequest
from wee5_xp.leaderboards import Leaderboards, Score
from wee5_xp.mappers import leaderboard_cursor
from wee5_xp.servicer import XpServicer


class Clock:
    def __init__(self, now: str) -> None:
        self.now = datetime.fromisoformat(now).replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: str) -> None:
        self.now = datetime.fromisoformat(now).replace(tzinfo=UTC)


async def earn(xp: XpServicer, community_id: str, user_id: str, times: int = 1) -> None:
    for _ in range(times):
        await xp.batcher.record(
            ActivityInput(
                community_id=community_id,
                user_id=user_id,
                kind="message",
                source="whop",
                idempotency_key=f"evt_{uuid.uuid4().hex}",
            )
        )


async def board(xp: XpServicer, community_id: str, **kw: Any) -> xp_pb2.GetLeaderboardResponse:
    request = xp_pb2.GetLeaderboardRequest(community_id=community_id, **kw)
    return await xp.GetLeaderboard(request, None)  # type: ignore[arg-type]


def entries(reply: xp_pb2.GetLeaderboardResponse) -> list[tuple[int, str, int]]:
    return [(e.rank, e.user_id, e.xp) for e in reply.entries]


WEEK = xp_pb2.PERIOD_WEEK
MONTH = xp_pb2.PERIOD_MONTH
DAY = xp_pb2.PERIOD_DAY


async def test_a_week_starts_on_monday_and_last_week_stays_queryable(
    make_xp: MakeServicer, community_id: str
) -> None:
    clock = Clock("2026-11-08T23:59:59")  # a Sunday
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_sunday", 2)
    clock.set("2026-11-09T00:00:00")  # Monday
    await earn(xp, community_id, "user_monday")

    this_week = await board(xp, community_id, period=WEEK)
    last_week = await board(xp, community_id, period=WEEK, at="2026-11-08")
    all_time = await board(xp, community_id, period=xp_pb2.PERIOD_ALL)

    assert (this_week.period_start, entries(this_week)) == ("2026-11-09", [(1, "user_monday", 20)])
    assert (last_week.period_start, entries(last_week)) == (
        "2026-11-02",
        [(1, "user_sunday", 40)],
    )
    assert entries(all_time) == [(1, "user_sunday", 40), (2, "user_monday", 20)]
    assert all_time.period_start == ""


async def test_a_month_ends_at_midnight_utc_by_default(
    make_xp: MakeServicer, community_id: str
) -> None:
    clock = Clock("2026-10-31T23:59:59.999")
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_october")
    clock.set("2026-11-01T00:00:00")
    await earn(xp, community_id, "user_november")

    november = await board(xp, community_id, period=MONTH)
    october = await board(xp, community_id, period=MONTH, at="2026-10-15")
    today = await board(xp, community_id, period=DAY)

    assert entries(november) == [(1, "user_november", 20)]
    assert entries(october) == [(1, "user_october", 20)]
    assert (today.period_start, entries(today)) == ("2026-11-01", [(1, "user_november", 20)])


async def test_periods_follow_the_communitys_time_zone(
    make_xp: MakeServicer, community_id: str
) -> None:
    # 12:00 UTC on Sunday the 8th is already Monday the 9th in Kiritimati (UTC+14).
    clock = Clock("2026-11-08T12:00:00")
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    async with xp.service.transaction() as session:
        config = await xp.service.config_of(session, community_id)
        await xp.service.update_config(
            session, community_id, replace(config, timezone="Pacific/Kiritimati")
        )
    await earn(xp, community_id, "user_a")

    week = await board(xp, community_id, period=WEEK)
    day = await board(xp, community_id, period=DAY)

    assert (week.period_start, day.period_start) == ("2026-11-09", "2026-11-09")
    assert entries(week) == [(1, "user_a", 20)]


async def test_ties_go_to_whoever_reached_the_score_first(
    make_xp: MakeServicer, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_early")
    await earn(xp, community_id, "user_late")
    first = entries(await board(xp, community_id))
    await earn(xp, community_id, "user_late")
    await earn(xp, community_id, "user_early")  # equal again, but user_late got to 40 first
    second = await board(xp, community_id, viewer_user_id="user_early")
    month = await board(xp, community_id, period=MONTH)

    assert first == [(1, "user_early", 20), (2, "user_late", 20)]
    assert entries(second) == [(1, "user_late", 40), (2, "user_early", 40)]
    assert (second.viewer.rank, second.viewer.xp) == (2, 40)
    assert entries(month) == entries(second)


async def test_cursor_pages_cover_the_board_once_and_stay_on_their_period(
    make_xp: MakeServicer, community_id: str
) -> None:
    clock = Clock("2026-11-11T10:00:00")
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    for n in range(7):
        await earn(xp, community_id, f"user_{n}", n + 1)
    pages = [await board(xp, community_id, period=WEEK, limit=3)]
    clock.set("2026-11-16T10:00:00")  # the week ended between two pages
    await earn(xp, community_id, "user_next_week", 20)
    while pages[-1].next_cursor:
        pages.append(
            await board(xp, community_id, period=WEEK, limit=3, cursor=pages[-1].next_cursor)
        )

    seen = [row for page in pages for row in entries(page)]
    assert [rank for rank, *_ in seen] == list(range(1, 8))
    assert [user for _, user, _ in seen] == [f"user_{n}" for n in range(6, -1, -1)]
    assert {page.period_start for page in pages} == {"2026-11-09"}
    with pytest.raises(InvalidCursor):
        await board(xp, community_id, cursor="not-a-cursor!")


async def test_a_lost_board_is_rebuilt_from_postgres_on_the_next_read(
    make_xp: MakeServicer, redis: Redis, community_id: str, test_env: dict[str, str]
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    for n in range(5):
        await earn(xp, community_id, f"user_{n}", 5 - n)
    before = {p: entries(await board(xp, community_id, period=p)) for p in (1, 2, 3, 4)}
    await _delete_boards(redis, test_env, community_id)

    after = {p: entries(await board(xp, community_id, period=p)) for p in (1, 2, 3, 4)}

    assert after == before
    assert before[1][0] == (1, "user_0", 100)


async def _delete_boards(redis: Redis, test_env: dict[str, str], community_id: str) -> int:
    keys = [
        key
        async for key in redis.scan_iter(
            match=f"{test_env['WEE5_REDIS_PREFIX']}:lb:{community_id}:*"
        )
    ]
    if keys:
        await redis.delete(*keys)
    return len(keys)


async def test_past_day_boards_come_from_postgres_when_redis_expired_them(
    make_xp: MakeServicer, redis: Redis, community_id: str, test_env: dict[str, str]
) -> None:
    clock = Clock("2026-11-01T09:00:00")
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_a", 3)
    clock.set("2026-11-20T09:00:00")
    await _delete_boards(redis, test_env, community_id)

    past = await board(xp, community_id, period=DAY, at="2026-11-01")

    assert entries(past) == [(1, "user_a", 60)]
    assert (await board(xp, community_id, period=DAY)).entries == []


async def test_a_hidden_member_ranks_where_they_would_stand_among_equal_scores(
    redis: Redis, test_env: dict[str, str]
) -> None:
    boards = Leaderboards(redis, Keys(test_env["WEE5_REDIS_PREFIX"]))
    key = boards.board_key(f"exp_{uuid.uuid4().hex[:12]}", "all", None)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    on_board = [
        Score(f"user_{n}", 40 if n % 3 == 0 else 20, start + timedelta(minutes=n))
        for n in range(30)
    ]

    async def scores() -> AsyncIterator[list[Score]]:
        yield on_board

    await boards.replace(key, "all", scores())

    for xp in (10, 20, 30, 40, 50):
        for minute in (-1, 0, 7, 15, 29, 40):
            hidden = Score("user_hidden", xp, start + timedelta(minutes=minute, seconds=30))
            # Ahead: more XP, or as much reached earlier.
            ahead = sum((s.xp, hidden.reached_at) > (hidden.xp, s.reached_at) for s in on_board)
            assert await boards.rank_among(key, hidden) == ahead + 1, (xp, minute)


async def _board_keys(redis: Redis, test_env: dict[str, str], community_id: str) -> set[str]:
    pattern = f"{test_env['WEE5_REDIS_PREFIX']}:lb:{community_id}:*"
    return {key async for key in redis.scan_iter(match=pattern)}


async def test_past_boards_exist_only_from_the_period_before_the_first_xp_to_today(
    make_xp: MakeServicer, redis: Redis, community_id: str, test_env: dict[str, str]
) -> None:
    """Every day asked for used to load a board into Redis: 3.6 million possible days per
    community. Only the periods from the one before the first XP to today are boards now."""
    clock = Clock("2026-11-11T10:00:00")  # a Wednesday
    xp = make_xp(clock=clock, xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_a")
    clock.set("2026-11-20T10:00:00")

    first_week = await board(xp, community_id, period=WEEK, at="2026-11-09")
    before = await board(xp, community_id, period=WEEK, at="2026-11-02")  # the "previous" link
    assert entries(first_week) == [(1, "user_a", 20)]
    assert (before.period_start, entries(before)) == ("2026-11-02", [])
    assert first_week.earliest_day == "2026-11-02"
    assert (await board(xp, community_id, period=DAY)).earliest_day == "2026-11-10"
    assert (await board(xp, community_id, period=MONTH)).earliest_day == "2026-10-01"
    assert (await board(xp, community_id, period=xp_pb2.PERIOD_ALL)).earliest_day == ""
    await xp.service.leaderboards.settled()  # the boards those reads found missing are built
    kept = await _board_keys(redis, test_env, community_id)

    for period, at in (
        (WEEK, "2026-11-01"),
        (DAY, "0001-01-01"),
        (MONTH, "2026-09-30"),
        (DAY, "2026-11-21"),  # tomorrow
        (WEEK, "9999-12-31"),
    ):
        with pytest.raises(InvalidLeaderboardRequest):
            await board(xp, community_id, period=period, at=at)
    # A cursor names its period's first day too: a forged one is held to the same range.
    forged = leaderboard_cursor(0, date(1970, 1, 5))
    with pytest.raises(InvalidLeaderboardRequest):
        await board(xp, community_id, period=WEEK, cursor=forged)
    assert await _board_keys(redis, test_env, community_id) == kept


async def test_a_community_without_xp_has_only_this_and_the_previous_period(
    make_xp: MakeServicer, community_id: str
) -> None:
    xp = make_xp(clock=Clock("2026-11-11T10:00:00"))
    assert entries(await board(xp, community_id, period=DAY, at="2026-11-10")) == []
    with pytest.raises(InvalidLeaderboardRequest):
        await board(xp, community_id, period=DAY, at="2026-11-09")


async def test_a_board_update_lands_after_redis_lost_its_scripts(
    make_xp: MakeServicer, redis: Redis, community_id: str
) -> None:
    xp = make_xp(xp_cooldown_seconds=0)
    await earn(xp, community_id, "user_a")
    await redis.script_flush()  # as after a Redis restart

    await earn(xp, community_id, "user_a")

    # Board updates run their scripts by hash alone; one Redis no longer has is loaded again.
    boards = xp.service.leaderboards
    assert await boards.page(boards.board_key(community_id, "all", None), 0, 10) == [("user_a", 40)]


async def test_an_award_is_answered_before_its_board_write_and_read_after_it(
    make_xp: MakeServicer, community_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The commit's caller is not kept waiting for Redis; this process's next read of the board
    # waits for the write queued before it, so a member answered sees their award.
    xp = make_xp(xp_cooldown_seconds=0)
    boards = xp.service.leaderboards
    key = boards.board_key(community_id, "all", None)
    redis_free = asyncio.Event()
    record = Leaderboards.record

    async def held(self: Leaderboards, *args: Any, **kwargs: Any) -> None:
        await redis_free.wait()
        await record(self, *args, **kwargs)

    monkeypatch.setattr(Leaderboards, "record", held)

    await asyncio.wait_for(earn(xp, community_id, "user_a"), 10)  # answered, write held
    read = asyncio.ensure_future(boards.page(key, 0, 10))
    await asyncio.sleep(0.05)
    assert not read.done()

    redis_free.set()
    assert await asyncio.wait_for(read, 10) == [("user_a", 20)]
