"""Leaderboards: Redis sorted sets per community and period, rebuilt from Postgres on a miss.

Ties go to whoever reached the score first. Each board is a sorted set scored by XP whose
members are `<16-digit inverted reach time>:<user_id>`: among equal scores Redis orders members
by their bytes, so in ZREVRANGE an earlier reach time (a larger inverted number) comes first.
A hash beside the set maps user_id to that member, so a member's rank stays one ZREVRANK
(O(log n)). Writes carry the reach time and apply only when newer than what is stored, so a
late or repeated write never moves a board backwards; a Lua script does each in one step.

A board is loaded from Postgres in chunks of CHUNK members, each its own script call: neither
the process nor Redis ever holds or blocks on a whole board of a million members at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from wee5_kit.aio import background
from wee5_kit.redis import Keys

PERIODS = ("day", "week", "month")
# How long Redis keeps a period's board after its last write (Postgres keeps it for good).
PERIOD_TTL = {"day": timedelta(days=3), "week": timedelta(days=15), "month": timedelta(days=62)}
_INVERT = 10**16 - 1
_BUILT = ""  # hash field marking a board loaded from Postgres (user ids are never empty)
# Members per script call when a board is loaded, and per read when two boards are compared.
CHUNK = 2000
# How long a board being rebuilt beside the live one may live if its rebuild dies half-way.
BUILD_TTL = timedelta(hours=1)
# Members one script call writes (Redis runs nothing else meanwhile: keep each call short).
_ENTRIES_PER_CALL = 1000
# What a board write carries per member: user_id, score (decimal), board member.
_Entry = tuple[str, str, str]

# KEYS: board, index. ARGV: ttl seconds, a JSON array of [user_id, score, member] (the score
# a decimal string). One argument for all of them: packing thousands of arguments per call cost
# the writer more than the writes cost Redis.
_RECORD = """
local applied = 0
for _, entry in ipairs(cjson.decode(ARGV[2])) do
  local user, score, member = entry[1], entry[2], entry[3]
  local old = redis.call('HGET', KEYS[2], user)
  if not old or string.sub(member, 1, 16) <= string.sub(old, 1, 16) then
    if old then redis.call('ZREM', KEYS[1], old) end
    if tonumber(score) > 0 then redis.call('ZADD', KEYS[1], score, member) end
    redis.call('HSET', KEYS[2], user, member)
    applied = applied + 1
  end
end
if tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return applied
"""
# KEYS: board, index. ARGV: user_id. -> {0-based rank, score} or nil.
_RANK = """
local member = redis.call('HGET', KEYS[2], ARGV[1])
if not member then return nil end
local rank = redis.call('ZREVRANK', KEYS[1], member)
if not rank then return nil end
return {rank, redis.call('ZSCORE', KEYS[1], member)}
"""
# KEYS: new board, new index, board, index. ARGV: ttl seconds (0: none). The new board takes
# the place of the old one in one step; an empty new board (no sorted set) leaves none.
_SWAP = """
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 2])
    if tonumber(ARGV[1]) > 0 then
      redis.call('EXPIRE', KEYS[i + 2], ARGV[1])
    else
      redis.call('PERSIST', KEYS[i + 2])
    end
  else
    redis.call('DEL', KEYS[i + 2])
  end
end
return 1
"""
# KEYS: board, other board. ARGV: first and last position. -> {positions where the two boards
# differ in user or score, positions looked at}. Redis compares: no entry crosses the network.
_DRIFT = """
local ours = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')
local theirs = redis.call('ZREVRANGE', KEYS[2], ARGV[1], ARGV[2], 'WITHSCORES')
local drift = 0
for i = 1, math.max(#ours, #theirs), 2 do
  local a, b = ours[i], theirs[i]
  if not a or not b or string.sub(a, 18) ~= string.sub(b, 18) or ours[i + 1] ~= theirs[i + 1] then
    drift = drift + 1
  end
end
return {drift, math.max(#ours, #theirs) / 2}
"""
# KEYS: board. ARGV: score, member. -> 1-based rank the member would have on the board. Ahead
# of it: every higher score, and those of its equals (greatest member first in ZREVRANGE) whose
# member is greater; they are found by bisecting the equals by rank, so a score shared by
# half a million members costs some twenty lookups, not a read of them all.
_RANK_AMONG = """
local lo = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
local hi = lo + redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1])
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if redis.call('ZREVRANGE', KEYS[1], mid, mid)[1] > ARGV[2] then lo = mid + 1 else hi = mid end
end
return lo + 1
"""


def period_start(period: str, day: date) -> date:
    """The first day of the `period` (day, week from Monday, month) that `day` falls in."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(period)


def local_day(moment: datetime, zone: tzinfo = UTC) -> date:
    return moment.astimezone(zone).date()


def board_member(user_id: str, reached_at: datetime) -> str:
    micros = int(reached_at.timestamp() * 1_000_000)
    return f"{_INVERT - micros:016d}:{user_id}"


@dataclass(frozen=True)
class Score:
    user_id: str
    xp: int
    reached_at: datetime


@dataclass(frozen=True)
class Standing:
    """A member's committed totals, to be mirrored into the boards."""

    community_id: str
    user_id: str
    total_xp: int
    reached_at: datetime
    # (period, start) -> XP in that period; the period rows share `reached_at`.
    period_xp: dict[tuple[str, date], int] = field(default_factory=dict)


# A board's scores as Postgres has them, a chunk at a time.
Loader = Callable[[], AsyncIterator[Sequence[Score]]]


class Leaderboards:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._record = redis.register_script(_RECORD)
        self._rank = redis.register_script(_RANK)
        self._rank_among = redis.register_script(_RANK_AMONG)
        self._swap = redis.register_script(_SWAP)
        self._drift = redis.register_script(_DRIFT)
        # Boards being loaded from Postgres by this process, by key: one load per board.
        self._loading: dict[str, asyncio.Task[None]] = {}

    def board_key(self, community_id: str, period: str, start: date | None) -> str:
        if period == "all" or start is None:
            return self.keys("lb", community_id, "all")
        return self.keys("lb", community_id, period, start.isoformat())

    def index_key(self, board: str) -> str:
        return f"{board}:ix"

    def prefix(self, community_id: str | None = None) -> str:
        return self.keys("lb", community_id) if community_id else self.keys("lb")

    async def communities(self) -> set[str]:
        """Every community Redis holds a board of (or a board's index), whatever Postgres has."""
        start = len(self.prefix()) + 1
        found: set[str] = set()
        async for key in self.redis.scan_iter(match=f"{self.prefix()}:*", count=1000):
            found.add(str(key)[start:].split(":", 1)[0])
        return found

    async def record(self, standings: Sequence[Standing]) -> None:
        """Mirrors committed totals: one script call per board for all of the batch's members
        on it (a batch of 1,000 activities is a handful of calls, not thousands), all in one
        pipeline. Each member's write is applied by reach time, as a single one would be."""
        boards: dict[tuple[str, str, date | None], list[_Entry]] = {}
        for s in standings:
            member = board_member(s.user_id, s.reached_at)
            entry = (s.user_id, str(s.total_xp), member)
            boards.setdefault((s.community_id, "all", None), []).append(entry)
            for (period, start), xp in s.period_xp.items():
                entry = (s.user_id, str(xp), member)
                boards.setdefault((s.community_id, period, start), []).append(entry)
        async with self.redis.pipeline(transaction=False) as pipe:
            for (community_id, period, day), entries in boards.items():
                key = self.board_key(community_id, period, day)
                ttl = int(PERIOD_TTL[period].total_seconds()) if period in PERIOD_TTL else 0
                await self._queue_record(pipe, key, ttl, entries)
            await pipe.execute()

    async def _queue_record(
        self, pipe: Pipeline, key: str, ttl: int, entries: Sequence[_Entry]
    ) -> None:
        """Queues the writes of `entries` to a board on `pipe`, `_ENTRIES_PER_CALL` a call."""
        for i in range(0, len(entries), _ENTRIES_PER_CALL):
            chunk = json.dumps(entries[i : i + _ENTRIES_PER_CALL])
            await self._record(keys=[key, self.index_key(key)], args=[ttl, chunk], client=pipe)

    async def ensure(self, key: str, period: str, load: Loader) -> None:
        """Loads a board that Redis lost (restart, eviction) from Postgres. Writes that raced
        the load merge in by reach time, so nothing committed is lost either way.

        The load is a task of its own, shared by every read of the board meanwhile: a read
        that gives up (its deadline passes: a million members take longer than one request
        may wait) leaves it running, so the board does get built. `load` must therefore not
        use the reader's session."""
        if await self.redis.hexists(self.index_key(key), _BUILT):
            return
        loading = self._loading.get(key)
        if loading is None:
            loading = background(self.write(key, period, load()), name=f"board-load {key}")
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        await asyncio.shield(loading)

    async def write(
        self, key: str, period: str, chunks: AsyncIterator[Sequence[Score]], ttl: int | None = None
    ) -> None:
        """Merges the scores into the board a chunk at a time, then marks it loaded."""
        if ttl is None:
            ttl = int(PERIOD_TTL[period].total_seconds()) if period in PERIOD_TTL else 0
        index = self.index_key(key)
        async for scores in chunks:
            entries = [
                (score.user_id, str(score.xp), board_member(score.user_id, score.reached_at))
                for score in scores
            ]
            async with self.redis.pipeline(transaction=False) as pipe:
                await self._queue_record(pipe, key, ttl, entries)
                await pipe.execute()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(index, _BUILT, "1")
            if ttl:
                pipe.expire(index, ttl)
            await pipe.execute()

    async def replace(self, key: str, period: str, chunks: AsyncIterator[Sequence[Score]]) -> int:
        """Rebuilds a board from scratch (reconcile) beside the live one, then puts it in the
        live one's place in one step: readers see the old board until then, never a part of
        the new one. Returns how many entries (rank, user, xp) the old board had wrong."""
        building = f"{key}:tmp:{uuid.uuid4().hex}"
        await self.write(building, period, chunks, ttl=int(BUILD_TTL.total_seconds()))
        drift = await self.drift(key, building)
        ttl = int(PERIOD_TTL[period].total_seconds()) if period in PERIOD_TTL else 0
        index, built = self.index_key(key), self.index_key(building)
        await self._swap(keys=[building, built, key, index], args=[ttl])
        return drift

    async def drift(self, key: str, other: str) -> int:
        """Positions where two boards differ in user or xp, compared a window at a time."""
        drift, start = 0, 0
        while True:
            differ, seen = await self._drift(keys=[key, other], args=[start, start + CHUNK - 1])
            if not seen:
                return drift
            drift += int(differ)
            start += CHUNK

    async def size(self, key: str) -> int:
        """How many members are on the board."""
        return int(await self.redis.zcard(key))

    async def page(self, key: str, offset: int, limit: int) -> list[tuple[str, int]]:
        rows = await self.redis.zrevrange(key, offset, offset + limit - 1, withscores=True)
        # withscores=True gives (member, score) pairs; the client's stubs cannot express that.
        return [(str(row[0]).split(":", 1)[1], int(row[1])) for row in rows]

    async def rank(self, key: str, user_id: str) -> tuple[int, int] | None:
        """(1-based rank, score) of a member, or None when they are not on the board."""
        placed = await self._rank(keys=[key, self.index_key(key)], args=[user_id])
        if not placed:
            return None
        return int(placed[0]) + 1, int(float(placed[1]))

    async def ranks(self, key: str, user_ids: Sequence[str]) -> list[tuple[int, str, int]]:
        """(1-based rank, user_id, score) of those of `user_ids` on the board, best first
        (one pipeline)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                await self._rank(keys=[key, self.index_key(key)], args=[user_id], client=pipe)
            replies = await pipe.execute()
        placed = [
            (int(reply[0]) + 1, user_id, int(float(reply[1])))
            for user_id, reply in zip(user_ids, replies, strict=True)
            if reply
        ]
        return sorted(placed)

    async def rank_among(self, key: str, score: Score) -> int:
        """The 1-based rank a member who is not on the board (hidden) would have on it."""
        member = board_member(score.user_id, score.reached_at)
        return int(await self._rank_among(keys=[key], args=[score.xp, member]))

    async def forget(self, community_id: str) -> None:
        """Drops every board of the community; each is loaded from Postgres on its next read."""
        async for key in self.redis.scan_iter(match=f"{self.prefix(community_id)}:*"):
            await self.redis.delete(key)
