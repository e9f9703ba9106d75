"""While Redis is down, boards and rank cards are read from Postgres: the same members in the
same order (ties by who reached the score first), the same totals, a hidden member's own rank,
instead of failing. xp runs against a redis-server of the test's own, killed mid-test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import free_port
from tests.support.faults import OwnServer, own_redis
from tests.xp.test_leaderboard import send
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build

PERIODS = (xp_pb2.PERIOD_ALL, xp_pb2.PERIOD_MONTH, xp_pb2.PERIOD_WEEK, xp_pb2.PERIOD_DAY)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    server = own_redis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def xp(
    database_url: str, redis_server: OwnServer
) -> AsyncIterator[xp_pb2_grpc.XpServiceAsyncStub]:
    addr = f"127.0.0.1:{free_port()}"
    settings = XpSettings(
        xp_addr=addr,
        xp_cooldown_seconds=0,
        redis_url=f"redis://127.0.0.1:{redis_server.port}/0",
    )
    server = await build(settings)
    await server.start()
    async with channel(addr) as chan:
        yield xp_pb2_grpc.XpServiceStub(chan)
    await server.stop()


async def everything_read(xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str) -> list[object]:
    """Every board page (two pages of two, a name search), the viewer's entry and the rank
    cards, as comparable values."""
    seen: list[object] = []
    for period in PERIODS:
        first = await xp.GetLeaderboard(
            xp_pb2.GetLeaderboardRequest(
                community_id=community_id, period=period, limit=2, viewer_user_id="user_hidden"
            )
        )
        second = await xp.GetLeaderboard(
            xp_pb2.GetLeaderboardRequest(
                community_id=community_id, period=period, limit=2, cursor=first.next_cursor
            )
        )
        for page in (first, second):
            seen.append([(e.rank, e.user_id, e.xp) for e in page.entries])
            seen.append(page.total)
        seen.append((first.viewer.rank, first.viewer.xp, first.viewer_cursor))
    for user in ("user_top", "user_early", "user_late", "user_low", "user_hidden"):
        card = (
            await xp.GetMember(xp_pb2.GetMemberRequest(community_id=community_id, user_id=user))
        ).member
        seen.append((user, card.rank, card.xp, [(p.rank, p.xp) for p in card.periods]))
    return seen


async def test_boards_and_cards_read_the_same_from_postgres_while_redis_is_down(
    xp: xp_pb2_grpc.XpServiceAsyncStub, redis_server: OwnServer, community_id: str
) -> None:
    await send(xp, community_id, "user_top", 5)
    await send(xp, community_id, "user_early", 3)  # reaches 60 XP first: ahead of user_late
    await send(xp, community_id, "user_late", 3)
    await send(xp, community_id, "user_low", 1)
    await send(xp, community_id, "user_hidden", 4)
    await xp.SetMemberPrivacy(
        xp_pb2.SetMemberPrivacyRequest(
            community_id=community_id, user_id="user_hidden", hidden_from_leaderboards=True
        )
    )
    from_redis = await everything_read(xp, community_id)

    redis_server.kill()
    try:
        from_postgres = await everything_read(xp, community_id)
    finally:
        redis_server.start()  # empty: the boards are loaded again on the next read
    reloaded = await everything_read(xp, community_id)

    assert from_redis[:4] == [
        [(1, "user_top", 100), (2, "user_early", 60)],
        4,
        [(3, "user_late", 60), (4, "user_low", 20)],
        4,
    ]
    assert from_postgres == from_redis
    assert reloaded == from_redis
