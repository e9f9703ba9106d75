"""The Whop forum-post sync against a local server speaking Whop's forum_posts API: pages by
cursor, resumes where it stopped, records each post once, and says so when Whop is off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.providers import FakeWhop
from tests.xp.support_tasks import run_task, run_task_process, totals
from wee5_xp.models import Activity, Community, ForumSync, Member

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def whop() -> Iterator[FakeWhop]:
    fake = FakeWhop()
    with fake.running():
        yield fake


async def forum_sync(whop: FakeWhop, community_id: str, **settings: object) -> int:
    return await run_task(
        "forum-sync",
        "--community",
        community_id,
        whop_api_url=whop.api_url,
        whop_api_key=settings.pop("key", whop.api_key),
        xp_cooldown_seconds=0,
        **settings,
    )


async def posts_recorded(sessions: Sessions, community_id: str) -> list[tuple[str, str, int]]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Activity)
            .where(Activity.community_id == community_id, Activity.kind == "post")
            .order_by(Activity.id)
        )
        return [(row.idempotency_key, row.user_id, row.xp_awarded) for row in rows]


async def test_posts_over_several_pages_then_only_new_ones(
    whop: FakeWhop, community_id: str, sessionmaker: Sessions
) -> None:
    first = [whop.add_post(community_id, f"user_{i % 3}") for i in range(7)]

    assert await forum_sync(whop, community_id, whop_page_size=3) == 0

    recorded = await posts_recorded(sessionmaker, community_id)
    assert [key for key, _, _ in recorded] == first
    assert all(15 <= xp <= 25 for _, _, xp in recorded)
    assert [r.query.get("after") is None for r in whop.requests] == [True, False, False]
    assert all(r.headers["authorization"] == f"Bearer {whop.api_key}" for r in whop.requests)
    assert all(r.query["experience_id"] == community_id for r in whop.requests)

    later = [whop.add_post(community_id, "user_new"), whop.add_post(community_id, "user_0")]
    whop.requests.clear()
    assert await forum_sync(whop, community_id, whop_page_size=3) == 0

    # Resumed after the stored cursor: one page with just the two new posts.
    assert len(whop.requests) == 1
    assert whop.requests[0].query["after"] is not None
    assert [key for key, _, _ in await posts_recorded(sessionmaker, community_id)] == first + later

    whop.requests.clear()
    assert await forum_sync(whop, community_id) == 0
    assert len(await posts_recorded(sessionmaker, community_id)) == 9
    members = await totals(sessionmaker, community_id)
    assert set(members) == {"user_0", "user_1", "user_2", "user_new"}
    async with sessionmaker() as session:
        state = await session.get(ForumSync, community_id)
        poster = await session.get(Member, (community_id, "user_0"))
    assert state is not None
    assert state.posts_recorded == 9
    assert poster is not None
    assert poster.posts == 4


async def test_a_lost_cursor_records_nothing_twice(
    whop: FakeWhop, community_id: str, sessionmaker: Sessions
) -> None:
    for i in range(4):
        whop.add_post(community_id, f"user_{i}")
    assert await forum_sync(whop, community_id) == 0
    async with sessionmaker.begin() as session:
        state = await session.get(ForumSync, community_id)
        assert state is not None
        state.cursor = None

    assert await forum_sync(whop, community_id) == 0

    assert len(await posts_recorded(sessionmaker, community_id)) == 4
    assert len(await totals(sessionmaker, community_id)) == 4


async def test_without_community_every_whop_experience_learned_from_webhooks_is_synced(
    whop: FakeWhop, community_id: str, sessionmaker: Sessions
) -> None:
    async with sessionmaker.begin() as session:
        session.add(Community(community_id=community_id, company_id="biz_test"))
    post = whop.add_post(community_id, "user_a")

    code = await run_task("forum-sync", whop_api_url=whop.api_url, whop_api_key=whop.api_key)

    assert code == 0
    assert [key for key, _, _ in await posts_recorded(sessionmaker, community_id)] == [post]


async def test_concurrent_runs_record_each_post_once(
    whop: FakeWhop, community_id: str, sessionmaker: Sessions
) -> None:
    for i in range(6):
        whop.add_post(community_id, f"user_{i}")

    codes = await asyncio.gather(
        *(forum_sync(whop, community_id, whop_page_size=2) for _ in range(3))
    )

    assert codes == [0, 0, 0]
    assert len(await posts_recorded(sessionmaker, community_id)) == 6
    async with sessionmaker() as session:
        state = await session.get(ForumSync, community_id)
    assert state is not None
    assert state.posts_recorded == 6


async def test_a_malformed_post_is_skipped_and_the_rest_recorded(
    whop: FakeWhop, community_id: str, sessionmaker: Sessions
) -> None:
    whop.add_post(community_id, "user_" + "x" * 80)  # longer than any member id
    fine = whop.add_post(community_id, "user_b")

    assert await forum_sync(whop, community_id) == 0
    assert [key for key, _, _ in await posts_recorded(sessionmaker, community_id)] == [fine]


async def test_forum_sync_retries_502_and_429_then_succeeds(
    whop: FakeWhop, community_id: str, sessionmaker: Sessions
) -> None:
    whop.add_post(community_id, "user_a")
    whop.fail_next(502)
    whop.fail_next(429, retry_after="0")

    assert await forum_sync(whop, community_id) == 0

    assert [r.status for r in whop.requests] == [502, 429, 200]
    assert len(await posts_recorded(sessionmaker, community_id)) == 1


async def test_rejected_key_fails_the_task(
    whop: FakeWhop, community_id: str, database_url: str
) -> None:
    # database_url: the task opens the run's database (migrated, named in WEE5_DATABASE_URL).
    whop.add_post(community_id, "user_a")

    assert await forum_sync(whop, community_id, key="apik_wrong") == 1
    assert [r.status for r in whop.requests] == [401]


async def test_without_a_whop_key_the_task_says_so_and_does_nothing(
    whop: FakeWhop, community_id: str, test_env: dict[str, str], database_url: str
) -> None:
    whop.add_post(community_id, "user_a")
    env = {"whop_api_url": whop.api_url, "whop_api_key": ""}

    off, required = await asyncio.gather(
        run_task_process(test_env, "forum-sync", "--community", community_id, **env),
        run_task_process(test_env, "forum-sync", "--require-key", **env),
    )

    assert off.code == 0
    assert "WEE5_WHOP_API_KEY is not set" in off.stderr
    assert required.code == 2
    assert "WEE5_WHOP_API_KEY is not set" in required.stderr
    assert whop.requests == []
