"""Leaderboards: Redis sorted sets per community and period, rebuilt from Postgres on a miss.

Scores are written as absolute totals read from the committed read model with `ZADD GT`, so
a late or repeated write can never lower a score or count anything twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from redis.asyncio import Redis

from wee5_kit.redis import Keys

PERIODS = ("day", "week", "month")
# How long a period's board outlives its period.
_PERIOD_TTL = {"day": timedelta(days=3), "week": timedelta(days=15), "month": timedelta(days=62)}


def period_starts(now: datetime) -> list[tuple[str, date]]:
    """The UTC day, ISO week (from Monday) and month that `now` falls in."""
    today = now.astimezone(UTC).date()
    return [
        ("day", today),
        ("week", today - timedelta(days=today.weekday())),
        ("month", today.replace(day=1)),
    ]


@dataclass(frozen=True)
class Standing:
    """A member's committed totals, to be mirrored into the boards."""

    community_id: str
    user_id: str
    total_xp: int
    period_xp: dict[tuple[str, date], int]


Loader = Callable[[], Awaitable[list[tuple[str, int]]]]


class Leaderboards:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def board_key(self, community_id: str, period: str, start: date | None) -> str:
        if period == "all" or start is None:
            return self.keys("lb", community_id, "all")
        return self.keys("lb", community_id, period, start.isoformat())

    async def record(self, standing: Standing) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(
                self.board_key(standing.community_id, "all", None),
                {standing.user_id: standing.total_xp},
                gt=True,
            )
            for (period, start), xp in standing.period_xp.items():
                key = self.board_key(standing.community_id, period, start)
                pipe.zadd(key, {standing.user_id: xp}, gt=True)
                pipe.expire(key, _PERIOD_TTL[period])
            await pipe.execute()

    async def ensure(self, key: str, period: str, load: Loader) -> None:
        """Rebuilds a board that Redis lost (restart, eviction) from Postgres."""
        if await self.redis.exists(key):
            return
        scores = await load()
        if not scores:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, dict(scores), gt=True)
            if period in _PERIOD_TTL:
                pipe.expire(key, _PERIOD_TTL[period])
            await pipe.execute()

    async def page(self, key: str, offset: int, limit: int) -> list[tuple[str, int]]:
        rows = await self.redis.zrevrange(key, offset, offset + limit - 1, withscores=True)
        # withscores=True gives (member, score) pairs; the client's stubs cannot express that.
        return [(str(row[0]), int(row[1])) for row in rows]

    async def rank(self, key: str, user_id: str) -> tuple[int, int] | None:
        """(1-based rank, score) of a member, or None when they are not on the board."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrank(key, user_id)
            pipe.zscore(key, user_id)
            rank, score = await pipe.execute()
        if rank is None or score is None:
            return None
        return int(rank) + 1, int(score)
