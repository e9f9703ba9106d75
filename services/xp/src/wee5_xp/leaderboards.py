"""Leaderboards: Redis sorted sets per community and period, rebuilt from Postgres on a miss.

Ties go to whoever reached the score first. Each board is a sorted set scored by XP whose
members are `<16-digit inverted reach time>:<user_id>`: among equal scores Redis orders members
by their bytes, so in ZREVRANGE an earlier reach time (a larger inverted number) comes first.
A hash beside the set maps user_id to that member, so a member's rank stays one ZREVRANK
(O(log n)). Writes carry the reach time and apply only when newer than what is stored (or as
new with a score at least as high), so a late or repeated write never moves a board backwards;
a Lua script does each in one step. Company boards (a company's members across its
communities, `company_key`) are kept the same way beside them.

A board Redis lost (restart, flush, eviction, a new period) is rebuilt in the background, one
rebuild per board across every replica (a lease in Redis, SET NX, renewed per chunk): members
stream from Postgres in key order into a board of its own beside the live key, in chunks of
pipelined script calls, and take the live key's place in one step (RENAME) at the end, so no
reader ever sees half a board. Until then readers ask Postgres (`wee5_xp.queries`), and every
write mirrored meanwhile lands in both boards, merged by reach time like any other write, so
nothing committed during the rebuild is lost. Neither the process nor Redis ever holds or
blocks on a whole board of a million members at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from wee5_kit.aio import background
from wee5_kit.logging import get_logger
from wee5_kit.redis import Keys

log = get_logger("wee5.xp.leaderboards")

PERIODS = ("day", "week", "month")
# How long Redis keeps a period's board after its last write (Postgres keeps it for good).
PERIOD_TTL = {"day": timedelta(days=3), "week": timedelta(days=15), "month": timedelta(days=62)}
_INVERT = 10**16 - 1
# Hash field of a board's index (user ids are never empty): "1" on a board loaded whole from
# Postgres, "building" on one being rebuilt beside it (writes mirrored meanwhile land there too).
_BUILT = ""
# Members per script call when a board is loaded, and per read when two boards are compared.
CHUNK = 2000
# How long a board being rebuilt beside the live one may live if its rebuild dies half-way.
BUILD_TTL = timedelta(hours=1)
# How long the size of a board being rebuilt, counted once by Postgres, is reused.
SIZE_TTL = timedelta(seconds=10)
# How long a replica's claim to rebuild a board lasts unless renewed (it is, after every
# chunk): a replica that dies mid-rebuild holds the board up this long at most.
REBUILD_LEASE = timedelta(seconds=30)
# Members one script call writes (Redis runs nothing else meanwhile: keep each call short).
_ENTRIES_PER_CALL = 1000
# What a board write carries per member: user_id, score (decimal), board member.
_Entry = tuple[str, str, str]
# A script, its keys and its arguments, for `Leaderboards._pipelined`.
_ScriptCall = tuple[AsyncScript, list[str], list[str | int]]

# Applies [user_id, score, member] entries to a board and its index, each only when its
# reach time is newer than the one stored, or the same with a score at least as high (a
# company board's sum can be written twice with one reach time, the later sum the larger: the
# one kept whatever order the two arrive in). -> how many applied.
_APPLY = """
local function newer(board, score, member, old)
  local ours, theirs = string.sub(member, 1, 16), string.sub(old, 1, 16)
  if ours ~= theirs then return ours < theirs end
  return tonumber(score) >= tonumber(redis.call('ZSCORE', board, old) or '0')
end
local function apply(board, index, entries)
  local applied = 0
  for _, entry in ipairs(entries) do
    local user, score, member = entry[1], entry[2], entry[3]
    local old = redis.call('HGET', index, user)
    if not old or newer(board, score, member, old) then
      if old then redis.call('ZREM', board, old) end
      if tonumber(score) > 0 then redis.call('ZADD', board, score, member) end
      redis.call('HSET', index, user, member)
      applied = applied + 1
    end
  end
  return applied
end
"""
# KEYS: board, index, board being rebuilt, its index. ARGV: ttl seconds, a JSON array of
# [user_id, score, member] (the score a decimal string). One argument for all of them: packing
# thousands of arguments per call cost the writer more than the writes cost Redis. While the
# board is being rebuilt (its index is marked), every write lands in the new board as well.
_RECORD = (
    _APPLY
    + """
local entries = cjson.decode(ARGV[2])
local applied = apply(KEYS[1], KEYS[2], entries)
if tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
if redis.call('HGET', KEYS[4], '') == 'building' then
  apply(KEYS[3], KEYS[4], entries)
end
return applied
"""
)
# KEYS: board being rebuilt, its index, lease. ARGV: lease token, lease milliseconds, ttl
# seconds of the new board, JSON entries as for _RECORD. A chunk of the rebuild: written only
# while the rebuild holds its lease (renewed by the write), so a rebuild that lost it (it
# stalled, or `forget` dropped the board and another began anew) never writes into another's.
# -> entries applied, or -1 when the lease is not ours.
_LOAD = (
    _APPLY
    + """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
local applied = apply(KEYS[1], KEYS[2], cjson.decode(ARGV[4]))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return applied
"""
)
# KEYS: board being rebuilt, its index, lease. ARGV: lease token, ttl seconds. Starts a
# rebuild afresh (what a dead one left is dropped) and marks it: from here on, writes to the
# live board land in it too. -> 1, or 0 when the lease is not ours.
_BEGIN = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '', 'building')
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""
# KEYS: board, index. ARGV: user_id. -> {0-based rank, score} or nil.
_RANK = """
local member = redis.call('HGET', KEYS[2], ARGV[1])
if not member then return nil end
local rank = redis.call('ZREVRANK', KEYS[1], member)
if not rank then return nil end
return {rank, redis.call('ZSCORE', KEYS[1], member)}
"""
# KEYS: new board, new index, board, index, lease. ARGV: ttl seconds (0: none), lease token.
# The new board takes the place of the old one in one step (an empty new board, no sorted set,
# leaves none), marked loaded; only while the rebuild still holds its lease and its board is
# whole (a `forget` meanwhile deleted it: it would be the board from before). -> 1 if swapped.
_SWAP = """
if redis.call('GET', KEYS[5]) ~= ARGV[2] or redis.call('HGET', KEYS[2], '') ~= 'building' then
  return 0
end
redis.call('HSET', KEYS[2], '', '1')
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
# KEYS: lease. ARGV: token. Gives the lease up if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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


@dataclass(frozen=True)
class CompanyScore:
    """A member's committed total on one of a company's boards (all time: `start` None)."""

    company_id: str
    period: str
    start: date | None
    score: Score


# A board's scores as Postgres has them, a chunk at a time.
Loader = Callable[[], AsyncIterator[Sequence[Score]]]


@dataclass(frozen=True)
class Rebuilt:
    """A board rebuilt from Postgres and swapped in."""

    board: str
    members: int
    seconds: float
    # Entries (rank, user, xp) the old board had wrong (when it was compared).
    drift: int = 0


def _chunks(entries: Sequence[_Entry]) -> list[str]:
    """`entries` as JSON arrays of at most `_ENTRIES_PER_CALL`, one per script call."""
    return [
        json.dumps(entries[i : i + _ENTRIES_PER_CALL])
        for i in range(0, len(entries), _ENTRIES_PER_CALL)
    ]


class RebuildAbandoned(Exception):
    """The rebuild lost its lease (it stalled past it, another took over) or its board was
    forgotten meanwhile: what it built is not swapped in."""

    def __init__(self, board: str) -> None:
        super().__init__(f"rebuild of {board} abandoned")


class Leaderboards:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._record = redis.register_script(_RECORD)
        self._rank = redis.register_script(_RANK)
        self._rank_among = redis.register_script(_RANK_AMONG)
        self._swap = redis.register_script(_SWAP)
        self._load = redis.register_script(_LOAD)
        self._begin = redis.register_script(_BEGIN)
        self._release = redis.register_script(_RELEASE)
        self._drift = redis.register_script(_DRIFT)
        # Boards this process rebuilds (it holds their lease), by key.
        self._rebuilding: dict[str, asyncio.Task[Rebuilt | None]] = {}
        # Committed totals not yet mirrored (`record_soon`), in commit order; one task writes
        # them. Counts of the commits queued and written so far, for readers to wait on.
        self._queued: list[tuple[Sequence[Standing], Sequence[CompanyScore]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._submitted = 0
        self._mirrored = 0
        self._progress = asyncio.Condition()

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

    def company_key(self, company_id: str, period: str, start: date | None) -> str:
        """A company's board: its members ranked across its opted-in communities."""
        if period == "all" or start is None:
            return self.keys("cb", company_id, "all")
        return self.keys("cb", company_id, period, start.isoformat())

    def company_prefix(self, company_id: str | None = None) -> str:
        return self.keys("cb", company_id) if company_id else self.keys("cb")

    async def companies(self) -> set[str]:
        """Every company Redis holds a board of."""
        start = len(self.company_prefix()) + 1
        found: set[str] = set()
        async for key in self.redis.scan_iter(match=f"{self.company_prefix()}:*", count=1000):
            found.add(str(key)[start:].split(":", 1)[0])
        return found

    async def forget_company(self, company_id: str) -> None:
        """Drops every board of the company; each is loaded from Postgres on its next read.
        One DEL for all the keys: a reader never sees a board marked whole with its entries
        gone."""
        await self.mirrored()
        keys = [k async for k in self.redis.scan_iter(match=f"{self.company_prefix(company_id)}:*")]
        if keys:
            await self.redis.delete(*keys)

    def record_soon(
        self, standings: Sequence[Standing], company: Sequence[CompanyScore] = ()
    ) -> None:
        """Queues a commit's totals for `record` without waiting for Redis: the commit's caller
        is answered a round trip sooner. One task writes what is queued, in commit order,
        everything queued meanwhile in one pipeline; this process's reads (`ready`) and resets
        (`forget`) first wait for what was queued before them, so a member who was answered
        sees their award on the next read. A write that fails is logged: the boards are
        rebuilt from Postgres when missing, and the reconcile task repairs any drift."""
        self._queued.append((standings, company))
        self._submitted += 1
        if self._writer is None or self._writer.done():
            self._writer = background(self._write_queued(), name="board writes")

    async def _write_queued(self) -> None:
        while self._queued:
            queued, self._queued = self._queued, []
            try:
                await self.record(
                    [s for standings, _ in queued for s in standings],
                    [c for _, company in queued for c in company],
                )
            except Exception:
                log.exception("leaderboard update failed")
            finally:  # even cancelled, so that no reader waits for it forever
                async with self._progress:
                    self._mirrored += len(queued)
                    self._progress.notify_all()

    async def mirrored(self) -> None:
        """Waits until what this process queued (`record_soon`) before now is in Redis, or
        failed to be. Every read of a board waits for it (a comparison when nothing is
        queued)."""
        wanted = self._submitted
        if self._mirrored >= wanted:
            return
        async with self._progress:
            await self._progress.wait_for(lambda: self._mirrored >= wanted)

    async def record(
        self, standings: Sequence[Standing], company: Sequence[CompanyScore] = ()
    ) -> None:
        """Mirrors committed totals: one script call per board for all of the batch's members
        on it (a batch of 1,000 activities is a handful of calls, not thousands), all in one
        pipeline. Each member's write is applied by reach time, as a single one would be.
        Company board totals of the same commit go in the same pipeline, then run as one
        transaction (MULTI/EXEC): a reader sees a member's community and company boards move
        together."""
        boards: dict[tuple[str, str, date | None], list[_Entry]] = {}
        for s in standings:
            member = board_member(s.user_id, s.reached_at)
            entry = (s.user_id, str(s.total_xp), member)
            boards.setdefault((s.community_id, "all", None), []).append(entry)
            for (period, start), xp in s.period_xp.items():
                entry = (s.user_id, str(xp), member)
                boards.setdefault((s.community_id, period, start), []).append(entry)
        keyed = {
            self.board_key(community_id, period, day): (period, entries)
            for (community_id, period, day), entries in boards.items()
        }
        for c in company:
            key = self.company_key(c.company_id, c.period, c.start)
            member = board_member(c.score.user_id, c.score.reached_at)
            entry = (c.score.user_id, str(c.score.xp), member)
            keyed.setdefault(key, (c.period, []))[1].append(entry)
        calls = []
        for key, (period, entries) in keyed.items():
            ttl = int(PERIOD_TTL[period].total_seconds()) if period in PERIOD_TTL else 0
            calls += self._record_calls(key, ttl, entries)
        await self._pipelined(calls, transaction=bool(company))

    def _record_calls(self, key: str, ttl: int, entries: Sequence[_Entry]) -> list[_ScriptCall]:
        """The writes of `entries` to a board (and to the board being rebuilt beside it, if
        one is), `_ENTRIES_PER_CALL` a call."""
        building = self.building_key(key)
        keys = [key, self.index_key(key), building, self.index_key(building)]
        return [(self._record, keys, [ttl, chunk]) for chunk in _chunks(entries)]

    async def _pipelined(self, calls: Sequence[_ScriptCall], *, transaction: bool) -> list[Any]:
        """Runs script calls in one pipeline, by their hash alone: redis-py would first ask
        Redis whether the scripts exist (`SCRIPT EXISTS`), a round trip more on every board
        update. A script Redis lost (a restart, `SCRIPT FLUSH`) is loaded and the pipeline run
        once more; the scripts' writes are idempotent (scores set, not added)."""
        try:
            return await self._run_pipeline(calls, transaction=transaction)
        except NoScriptError:
            for script in {script for script, _, _ in calls}:
                await self.redis.script_load(script.script)
            return await self._run_pipeline(calls, transaction=transaction)

    async def _run_pipeline(self, calls: Sequence[_ScriptCall], *, transaction: bool) -> list[Any]:
        async with self.redis.pipeline(transaction=transaction) as pipe:
            for script, keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return await pipe.execute()

    def building_key(self, key: str) -> str:
        """Where the board is rebuilt, beside the live one (one rebuild at a time: the lease)."""
        return f"{key}:building"

    def lease_key(self, key: str) -> str:
        return f"{key}:rebuild"

    async def ready(self, key: str, period: str, load: Loader) -> bool:
        """True when the board is whole in Redis. Otherwise starts its rebuild in the
        background, unless one runs already (in this replica or another: the lease), and
        answers False at once: the caller reads Postgres meanwhile, it never waits for the
        rebuild. `load` must not use the reader's session (the rebuild outlives the read)."""
        await self.mirrored()
        if await self.redis.hexists(self.index_key(key), _BUILT):
            return True
        if key not in self._rebuilding:
            token = uuid.uuid4().hex
            lease = int(REBUILD_LEASE.total_seconds() * 1000)
            if await self.redis.set(self.lease_key(key), token, nx=True, px=lease):
                rebuild = background(self._rebuild_missing(key, period, load, token), name=key)
                self._rebuilding[key] = rebuild
                rebuild.add_done_callback(lambda _: self._rebuilding.pop(key, None))
        return False

    def rebuilding(self, key: str) -> asyncio.Task[Rebuilt | None] | None:
        """The rebuild of the board this process runs, if it runs one."""
        return self._rebuilding.get(key)

    async def settled(self) -> None:
        """Waits for the rebuilds this process runs (tests, shutdown)."""
        await asyncio.gather(*self._rebuilding.values(), return_exceptions=True)

    async def _rebuild_missing(
        self, key: str, period: str, load: Loader, token: str
    ) -> Rebuilt | None:
        try:
            # Another replica may have finished the board between our look and our lease.
            if await self.redis.hexists(self.index_key(key), _BUILT):
                return None
            rebuilt = await self._build(key, period, load(), token)
            log.info("board rebuilt", **asdict(rebuilt))
            return rebuilt
        except Exception:
            # The board stays missing (reads go to Postgres); the next read tries again.
            log.exception("board rebuild failed", board=key)
            return None
        finally:
            await self._release(keys=[self.lease_key(key)], args=[token])

    async def replace(
        self, key: str, period: str, chunks: AsyncIterator[Sequence[Score]]
    ) -> Rebuilt:
        """Rebuilds a board from scratch (reconcile) as a missing one is, the live one read
        meanwhile; waits for a rebuild another replica runs to end first. `drift` counts the
        entries (rank, user, xp) the old board had wrong."""
        token = uuid.uuid4().hex
        lease = int(REBUILD_LEASE.total_seconds() * 1000)
        # The lease is another process's: nothing here could signal its end.
        while not await self.redis.set(self.lease_key(key), token, nx=True, px=lease):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        try:
            return await self._build(key, period, chunks, token, compare=True)
        finally:
            await self._release(keys=[self.lease_key(key)], args=[token])

    async def _build(
        self,
        key: str,
        period: str,
        chunks: AsyncIterator[Sequence[Score]],
        token: str,
        *,
        compare: bool = False,
    ) -> Rebuilt:
        """Streams the scores into the board's building key, a pipeline of script calls per
        chunk (the next chunk read from Postgres meanwhile), each renewing the lease, then
        swaps it in (compared with the old first
        when `compare`). The building key is marked before the first score is read from
        Postgres: a write committed after the read's snapshot is mirrored after the mark, so
        into both boards; one committed before is in the snapshot."""
        started = time.perf_counter()
        building = self.building_key(key)
        built, lease = self.index_key(building), self.lease_key(key)
        build_ttl = int(BUILD_TTL.total_seconds())
        renewal = int(REBUILD_LEASE.total_seconds() * 1000)
        if not await self._begin(keys=[building, built, lease], args=[token, build_ttl]):
            raise RebuildAbandoned(key)
        count = 0
        async with contextlib.aclosing(_fetched_ahead(chunks)) as fetched:
            async for scores in fetched:
                entries = [
                    (score.user_id, str(score.xp), board_member(score.user_id, score.reached_at))
                    for score in scores
                ]
                keys = [building, built, lease]
                applied = await self._pipelined(
                    [
                        (self._load, keys, [token, renewal, build_ttl, chunk])
                        for chunk in _chunks(entries)
                    ],
                    transaction=False,
                )
                if -1 in applied:
                    raise RebuildAbandoned(key)
                count += len(entries)
        drift = await self.drift(key, building) if compare else 0
        ttl = int(PERIOD_TTL[period].total_seconds()) if period in PERIOD_TTL else 0
        swapped = await self._swap(
            keys=[building, built, key, self.index_key(key), lease], args=[ttl, token]
        )
        if not swapped:
            raise RebuildAbandoned(key)
        return Rebuilt(key, count, round(time.perf_counter() - started, 3), drift)

    async def remembered_size(self, key: str) -> int | None:
        """The size of a board being rebuilt, as Postgres counted it lately."""
        size = await self.redis.get(f"{key}:size")
        return int(size) if size is not None else None

    async def remember_size(self, key: str, size: int) -> None:
        await self.redis.set(f"{key}:size", size, ex=int(SIZE_TTL.total_seconds()))

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
        await self.mirrored()
        return int(await self.redis.zcard(key))

    async def page(self, key: str, offset: int, limit: int) -> list[tuple[str, int]]:
        await self.mirrored()
        rows = await self.redis.zrevrange(key, offset, offset + limit - 1, withscores=True)
        # withscores=True gives (member, score) pairs; the client's stubs cannot express that.
        return [(str(row[0]).split(":", 1)[1], int(row[1])) for row in rows]

    async def rank(self, key: str, user_id: str) -> tuple[int, int] | None:
        """(1-based rank, score) of a member, or None when they are not on the board."""
        await self.mirrored()
        placed = await self._rank(keys=[key, self.index_key(key)], args=[user_id])
        if not placed:
            return None
        return int(placed[0]) + 1, int(float(placed[1]))

    async def ranks(self, key: str, user_ids: Sequence[str]) -> list[tuple[int, str, int]]:
        """(1-based rank, user_id, score) of those of `user_ids` on the board, best first
        (one pipeline)."""
        await self.mirrored()
        replies = await self._pipelined(
            [(self._rank, [key, self.index_key(key)], [user_id]) for user_id in user_ids],
            transaction=False,
        )
        placed = [
            (int(reply[0]) + 1, user_id, int(float(reply[1])))
            for user_id, reply in zip(user_ids, replies, strict=True)
            if reply
        ]
        return sorted(placed)

    async def rank_among(self, key: str, score: Score) -> int:
        """The 1-based rank a member who is not on the board (hidden) would have on it."""
        await self.mirrored()
        member = board_member(score.user_id, score.reached_at)
        return int(await self._rank_among(keys=[key], args=[score.xp, member]))

    async def forget(self, community_id: str) -> None:
        """Drops every board of the community; each is loaded from Postgres on its next read."""
        await self.mirrored()
        async for key in self.redis.scan_iter(match=f"{self.prefix(community_id)}:*"):
            await self.redis.delete(key)


async def _fetched_ahead(
    chunks: AsyncIterator[Sequence[Score]],
) -> AsyncGenerator[Sequence[Score], None]:
    """The chunks, each next one fetched while the caller writes the one before: Postgres
    streams while Redis writes, instead of each waiting for the other. The source is closed
    however the caller stops."""
    upcoming = asyncio.ensure_future(anext(chunks, None))
    try:
        while (chunk := await upcoming) is not None:
            upcoming = asyncio.ensure_future(anext(chunks, None))
            yield chunk
    finally:
        upcoming.cancel()
        # What went wrong is already on its way up (or nothing did: this is None).
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await upcoming
        if hasattr(chunks, "aclose"):
            await chunks.aclose()
