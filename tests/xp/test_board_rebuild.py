"""A board of 200,000 members that Redis lost is rebuilt in the background while it is read:
every read meanwhile is answered at once from Postgres (marked `updating`) with the ranks the
Redis board has after the swap; two replicas asked at once start one rebuild; an award made
during the rebuild is on the board after it. The members are seeded by COPY as `make
bench-scale` seeds them (tests/support/seeding.py), and the rebuild is held after its first
chunk until the test lets it go on, so "during the rebuild" is a state the test is in, not a
race it hopes to win."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.seeding import seed, unseed, xp_of
from tests.xp.conftest import MakeServicer
from tests.xp.test_boards import _delete_boards, board, entries
from wee5.xp.v1 import xp_pb2
from wee5_xp.leaderboards import Score
from wee5_xp.repository import XpRepository
from wee5_xp.servicer import XpServicer

MEMBERS = 200_000
TOP = 25


@dataclass
class Gate:
    """Holds every all-time board load after its first chunk until `release` is set."""

    loads: int = 0
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    held = Gate()
    scores = XpRepository.all_time_scores

    async def held_after_first_chunk(
        self: XpRepository, community_id: str
    ) -> AsyncIterator[list[Score]]:
        held.loads += 1
        first = True
        async for chunk in scores(self, community_id):
            yield chunk
            if first:
                first = False
                held.paused.set()
                await held.release.wait()

    monkeypatch.setattr(XpRepository, "all_time_scores", held_after_first_chunk)
    return held


def expected_top(count: int) -> list[tuple[int, str, int]]:
    """The seeded board's first `count` ranks: most XP first, ties to who reached it first."""
    order = sorted(range(MEMBERS), key=lambda i: (-xp_of(i), i))  # reach time grows with i
    return [(rank, f"user_{i}", xp_of(i)) for rank, i in enumerate(order[:count], start=1)]


async def card(xp: XpServicer, community_id: str, user_id: str) -> xp_pb2.Member:
    request = xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
    return (await xp.GetMember(request, None)).member  # type: ignore[arg-type]


async def award(xp: XpServicer, community_id: str, user_id: str, points: int) -> None:
    request = xp_pb2.AwardPointsRequest(
        community_id=community_id,
        user_id=user_id,
        points=points,
        reason="rebuild_test",
        idempotency_key=uuid.uuid4().hex,
    )
    await xp.AwardPoints(request, None)  # type: ignore[arg-type]


async def settled(replicas: list[XpServicer]) -> None:
    """Waits for the rebuilds the replicas run."""
    await asyncio.gather(*(replica.service.leaderboards.settled() for replica in replicas))


def standing(member: xp_pb2.Member) -> tuple[object, ...]:
    return (member.rank, member.xp, [(p.rank, p.xp) for p in member.periods])


async def read_as_built(
    replicas: list[XpServicer],
    community_id: str,
    built: xp_pb2.GetLeaderboardResponse,
    built_card: xp_pb2.Member,
) -> None:
    """Reads the first two pages and a rank card concurrently on every replica: each answer
    from Postgres (`updating`) and the same as the built board's (the card's rank close to
    it: estimated)."""
    pages = await asyncio.gather(
        *(board(replica, community_id, limit=TOP) for replica in replicas for _ in range(10)),
        *(
            board(replica, community_id, limit=TOP, cursor=built.next_cursor)
            for replica in replicas
        ),
    )
    user_id = built_card.user_id
    cards = await asyncio.gather(*(card(replica, community_id, user_id) for replica in replicas))
    for reply in pages[: 10 * len(replicas)]:
        assert reply.updating
        assert entries(reply) == entries(built)
        assert reply.total == built.total
    for reply in pages[10 * len(replicas) :]:
        assert reply.updating
        assert [e.rank for e in reply.entries] == list(range(TOP + 1, 2 * TOP + 1))
    for during in cards:
        # A board this large ranks a card from the part rebuilt so far (5,000 members, a
        # fair sample in key order), marked so: within a few percent of the counted rank.
        assert during.updating
        assert during.rank_approximate
        assert abs(during.rank - built_card.rank) <= built_card.rank * 0.05
        assert standing(during)[1:] == standing(built_card)[1:]


@pytest.fixture
async def seeded(database_url: str, community_id: str) -> AsyncIterator[str]:
    """The community with `MEMBERS` members seeded by COPY, removed afterwards: 200,000
    members no webhook described would otherwise be every later profile refresh's work."""
    await seed(database_url, community_id, MEMBERS)
    yield community_id
    await unseed(database_url, community_id)


async def test_a_lost_board_of_200k_members_reads_from_postgres_until_one_rebuild_swaps_in(
    make_xp: MakeServicer,
    redis: Redis,
    seeded: str,
    test_env: dict[str, str],
    gate: Gate,
) -> None:
    community_id = seeded
    replicas = [make_xp(xp_cooldown_seconds=0), make_xp(xp_cooldown_seconds=0)]
    first, second = replicas
    key = first.service.leaderboards.board_key(community_id, "all", None)
    middle = f"user_{MEMBERS // 2}"

    gate.release.set()  # the first builds run through: the boards as Redis has them
    assert (await board(first, community_id, limit=TOP)).updating
    assert (await card(first, community_id, middle)).updating  # the period boards, too
    await settled(replicas)
    built = await board(first, community_id, limit=TOP)
    assert not built.updating
    assert entries(built) == expected_top(TOP)
    middle_card = await card(first, community_id, middle)
    assert not middle_card.updating

    # Redis loses the board; both replicas are asked for it at once.
    await _delete_boards(redis, test_env, community_id)
    gate.loads, gate.release = 0, asyncio.Event()
    gate.paused.clear()
    asked = await asyncio.gather(
        *(board(replica, community_id, limit=TOP) for replica in replicas for _ in range(3))
    )
    await gate.paused.wait()
    rebuilding = [r.service.leaderboards.rebuilding(key) for r in replicas]
    assert len([task for task in rebuilding if task is not None]) == 1
    assert gate.loads == 1
    assert all(reply.updating for reply in asked)
    assert [entries(reply) for reply in asked] == [entries(built)] * len(asked)

    # During the rebuild every read is answered, from Postgres, the same as the built board.
    await read_as_built(replicas, community_id, built, middle_card)
    assert not await redis.exists(key)  # only the board being built holds the first chunk

    # An award during the rebuild: committed after the rebuild's snapshot was taken.
    # One who ranks behind the middle member: the same XP, reached later.
    behind = max(i for i in range(MEMBERS) if xp_of(i) == xp_of(MEMBERS // 2))
    climber = f"user_{behind}"
    points = entries(built)[0][2] + 1000 - xp_of(behind)
    await award(first, community_id, climber, points)
    fallback = await board(second, community_id, limit=TOP)
    assert fallback.updating
    assert entries(fallback)[0] == (1, climber, entries(built)[0][2] + 1000)
    # The write landed in the board being built too (it is not in the snapshot it reads).
    leaderboards = first.service.leaderboards
    assert await leaderboards.rank(leaderboards.building_key(key), climber) == (
        1,
        entries(built)[0][2] + 1000,
    )

    gate.release.set()
    await settled(replicas)
    after = [await board(replica, community_id, limit=TOP) for replica in replicas]
    for reply in after:
        assert not reply.updating
        assert entries(reply) == entries(fallback)
        assert reply.total == fallback.total
    after_card = await card(second, community_id, middle)
    assert not after_card.updating
    assert not after_card.rank_approximate
    assert standing(after_card)[1:] == standing(middle_card)[1:]
    assert after_card.rank == middle_card.rank + 1  # the climber passed them
    assert await redis.exists(leaderboards.building_key(key), leaderboards.lease_key(key)) == 0


async def test_a_lost_week_board_is_rebuilt_from_period_xp_the_same_way(
    make_xp: MakeServicer,
    redis: Redis,
    community_id: str,
    test_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Period boards take the same path: read from Postgres (`xp.period_xp`) while rebuilt,
    a write meanwhile kept, the rebuilt board the same as the fallback's answers."""
    xp = make_xp(xp_cooldown_seconds=0)
    for n in range(5):
        await award(xp, community_id, f"user_{n}", 10 * (n + 1))
    week = xp_pb2.PERIOD_WEEK
    built = await board(xp, community_id, period=week, limit=3)
    await settled([xp])
    await _delete_boards(redis, test_env, community_id)
    paused, release = asyncio.Event(), asyncio.Event()
    scores = XpRepository.period_scores

    async def held(self: XpRepository, *args: Any) -> AsyncIterator[list[Score]]:
        paused.set()
        await release.wait()
        async for chunk in scores(self, *args):
            yield chunk

    monkeypatch.setattr(XpRepository, "period_scores", held)

    during = await board(xp, community_id, period=week, limit=3)
    await paused.wait()
    await award(xp, community_id, "user_0", 100)  # 110 in the week: first
    moved = await board(xp, community_id, period=week, limit=3)
    release.set()
    await settled([xp])
    after = await board(xp, community_id, period=week, limit=3)

    assert during.updating
    assert entries(during) == entries(built)
    assert moved.updating
    assert entries(moved)[0] == (1, "user_0", 110)
    assert not after.updating
    assert entries(after) == entries(moved)
    assert after.total == 5
