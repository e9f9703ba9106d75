"""Leaderboards and rank cards over the real xp gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from redis.asyncio import Redis

from tests.conftest import free_port
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.grpc import channel
from wee5_xp.config import XpSettings
from wee5_xp.server import build


@pytest.fixture(scope="module")
async def xp(database_url: str) -> AsyncIterator[xp_pb2_grpc.XpServiceAsyncStub]:
    addr = f"127.0.0.1:{free_port()}"
    server = await build(XpSettings(xp_addr=addr, xp_cooldown_seconds=0))
    await server.start()
    async with channel(addr) as chan:
        yield xp_pb2_grpc.XpServiceStub(chan)
    await server.stop()


async def send(
    xp: xp_pb2_grpc.XpServiceAsyncStub,
    community_id: str,
    user_id: str,
    n: int,
    kind: xp_pb2.ActivityKind.ValueType = xp_pb2.ACTIVITY_KIND_MESSAGE,
) -> None:
    for i in range(n):
        await xp.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id=user_id,
                    kind=kind,
                    source=xp_pb2.SOURCE_WHOP,
                    idempotency_key=f"{user_id}-{kind}-{i}",
                )
            )
        )


async def board(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str, **kw: object
) -> xp_pb2.GetLeaderboardResponse:
    request = xp_pb2.GetLeaderboardRequest(community_id=community_id, **kw)  # type: ignore[arg-type]
    return await xp.GetLeaderboard(request)


async def test_members_are_ranked_by_xp_in_every_period(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    await send(xp, community_id, "user_b", 3)
    await send(xp, community_id, "user_a", 6)
    await send(xp, community_id, "user_c", 1)

    for period in (xp_pb2.PERIOD_ALL, xp_pb2.PERIOD_MONTH, xp_pb2.PERIOD_WEEK, xp_pb2.PERIOD_DAY):
        reply = await board(xp, community_id, period=period)
        assert [(e.rank, e.user_id, e.xp, e.level) for e in reply.entries] == [
            (1, "user_a", 120, 2),
            (2, "user_b", 60, 1),
            (3, "user_c", 20, 1),
        ]
        # The whole board's size, whatever the page holds.
        assert (await board(xp, community_id, period=period, limit=1)).total == 3


async def test_leaderboard_pages_with_cursor_and_shows_the_viewer(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    for i, count in enumerate((5, 4, 3, 2, 1)):
        await send(xp, community_id, f"user_{i}", count)

    first = await board(xp, community_id, limit=2, viewer_user_id="user_4")
    second = await board(xp, community_id, limit=2, cursor=first.next_cursor)
    last = await board(xp, community_id, limit=2, cursor=second.next_cursor)

    assert [e.user_id for e in first.entries] == ["user_0", "user_1"]
    assert [e.rank for e in second.entries] == [3, 4]
    assert [e.user_id for e in last.entries] == ["user_4"]
    assert last.next_cursor == ""
    assert (first.viewer.rank, first.viewer.user_id, first.viewer.xp) == (5, "user_4", 20)


async def test_board_lost_from_redis_is_rebuilt_from_postgres(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str, redis: Redis, test_env: dict[str, str]
) -> None:
    await send(xp, community_id, "user_a", 2)
    await send(xp, community_id, "user_b", 1)
    async for key in redis.scan_iter(match=f"{test_env['WEE5_REDIS_PREFIX']}:lb:{community_id}:*"):
        await redis.delete(key)

    for period in (xp_pb2.PERIOD_ALL, xp_pb2.PERIOD_DAY):
        reply = await board(xp, community_id, period=period)
        assert [(e.user_id, e.xp) for e in reply.entries] == [("user_a", 40), ("user_b", 20)]


async def test_rank_card_shows_progress_and_totals(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    await send(xp, community_id, "user_a", 6)
    await send(xp, community_id, "user_a", 2, kind=xp_pb2.ACTIVITY_KIND_REACTION)
    await send(xp, community_id, "user_b", 7)

    reply = await xp.GetMember(xp_pb2.GetMemberRequest(community_id=community_id, user_id="user_a"))
    card = reply.member
    assert (card.xp, card.level, card.rank) == (130, 2, 2)
    assert (card.xp_into_level, card.xp_for_next_level) == (30, 155)
    assert card.progress == pytest.approx(30 / 155)
    assert (card.totals.messages, card.totals.reactions) == (6, 2)


async def test_unknown_member_is_not_found(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await xp.GetMember(xp_pb2.GetMemberRequest(community_id=community_id, user_id="ghost"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "request_fields",
    [{"limit": 1000}, {"cursor": "not-a-cursor"}, {"period": 99}],
)
async def test_bad_leaderboard_requests_are_invalid_arguments(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str, request_fields: dict[str, object]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await board(xp, community_id, **request_fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_activity_without_kind_is_invalid_argument(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await xp.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id="u",
                    source=xp_pb2.SOURCE_WHOP,
                    idempotency_key="k",
                )
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def named_messages(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str, user_id: str, name: str, n: int
) -> None:
    for i in range(n):
        await xp.RecordActivity(
            xp_pb2.RecordActivityRequest(
                activity=xp_pb2.Activity(
                    community_id=community_id,
                    user_id=user_id,
                    kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                    source=xp_pb2.SOURCE_WHOP,
                    idempotency_key=f"{user_id}-named-{i}",
                    profile=xp_pb2.Profile(display_name=name, username=name.lower() + "_x"),
                )
            )
        )


async def test_a_name_search_keeps_matching_members_with_their_rank_on_the_whole_board(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    await named_messages(xp, community_id, "user_srch_a", "Alice Stone", 5)
    await named_messages(xp, community_id, "user_srch_b", "Bob", 4)
    await named_messages(xp, community_id, "user_srch_c", "MALICE_100%", 3)
    await named_messages(xp, community_id, "user_srch_d", "Dora", 2)

    found = await board(xp, community_id, query="  alice ")
    assert found.total == 4  # the board's, not the matches'
    assert [(e.rank, e.user_id) for e in found.entries] == [(1, "user_srch_a"), (3, "user_srch_c")]
    assert found.entries[1].profile.display_name == "MALICE_100%"

    by_username = await board(xp, community_id, query="DORA_")
    assert [(e.rank, e.user_id) for e in by_username.entries] == [(4, "user_srch_d")]
    # LIKE's wildcards are letters like any other.
    assert [e.user_id for e in (await board(xp, community_id, query="%")).entries] == [
        "user_srch_c"
    ]
    assert (await board(xp, community_id, query="_")).entries  # every username has one

    first = await board(xp, community_id, query="a", limit=1)
    assert [e.user_id for e in first.entries] == ["user_srch_a"]
    second = await board(xp, community_id, query="a", limit=1, cursor=first.next_cursor)
    assert [e.user_id for e in second.entries] == ["user_srch_c"]


async def test_a_name_with_control_characters_still_earns_xp_and_shows_without_them(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    # Postgres text cannot hold NUL: the name is cleaned, the activity is never refused.
    await named_messages(xp, community_id, "user_nul", "Eve\x00 \x1b[31mRed\x7f", 1)
    found = await board(xp, community_id)
    assert [(e.user_id, e.xp > 0) for e in found.entries] == [("user_nul", True)]
    assert found.entries[0].profile.display_name == "Eve [31mRed"


async def test_a_name_search_longer_than_100_characters_is_refused(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await board(xp, community_id, query="x" * 101)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_viewer_cursor_opens_the_page_holding_the_viewers_entry(
    xp: xp_pb2_grpc.XpServiceAsyncStub, community_id: str
) -> None:
    for n in range(5):
        await send(xp, community_id, f"user_page_{n}", 5 - n)

    first = await board(xp, community_id, limit=2, viewer_user_id="user_page_1")
    assert first.viewer.rank == 2
    assert first.viewer_cursor == ""  # the first page holds it
    asked = await board(xp, community_id, limit=2, viewer_user_id="user_page_4")
    assert asked.viewer.rank == 5
    third = await board(xp, community_id, limit=2, cursor=asked.viewer_cursor)
    assert [e.user_id for e in third.entries] == ["user_page_4"]
