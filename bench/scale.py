"""`make bench-scale`: what a read or an award costs must not grow with the community.

Starts the platform the way `make up` does (database, Redis prefix and NATS prefix of its own)
and seeds one community of `--large` members (1,000,000) and one of `--small` (10,000) straight
into xp's tables by COPY (tests/support/seeding.py: imported XP, heavy-tailed, half the members
sharing the lowest score, and the `import` ledger entry that explains it). The member half-way down each board hides from the boards.
Then it runs xp's reconcile task (`python -m wee5_xp.tasks reconcile`: it checks the read model
against the ledger and builds the Redis boards), prints its time and peak memory, checks the
API ranks the middle members where Postgres does (the boards are built, whole). Then, per
community, it flushes the boards from Redis and reads while xp rebuilds them in the background
(`--readers` clients at once, board pages of varied sizes and cards of random members): it
prints the rebuild time (first read to the swap) and the p50/p99 of the board and card reads
meanwhile (answered from Postgres, marked `updating`; any answer but a 200 fails the bench),
and checks the rebuilt board's top 25 is the one the fallback served. Last it measures with
wrk, the boards rebuilt, the two communities taking turns:
  - the leaderboard's top 25,
  - the rank of the (visible) member in the middle, and of the hidden one,
  - the rank card PNG of the member in the middle,
  - points awarded to the member in the middle, a new idempotency key per request.
It prints each case at both sizes with the ratios large/small of p50 latency and throughput,
flagging a case more than 1.5x worse with the large community; last, the resident memory of
the xp and gateway processes (xp must stay within 150 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from bench import wrk
from bench.benchmarks import plain_dsn
from bench.environment import RUN, bench_env, drop_database, reset_database
from tests.support.gateway import RATE_LIMITED_CLASSES, UNLIMITED, bearer
from tests.support.seeding import seed
from tests.support.stack import Stack, service_pids, start_stack, stop_stack
from wee5_gateway.config import GatewaySettings
from wee5_kit.redis import create_redis

# A ratio large/small past this is not flat (p50 latency higher, or throughput lower, by more).
WORSE = 1.5
XP_RSS_LIMIT_MB = 150


@dataclass(frozen=True)
class Community:
    label: str
    id: str
    count: int
    middle: str = ""  # the visible member half-way down the board
    hidden: str = ""  # the member just above it, hidden from the boards


async def hide_middle(dsn: str, community: Community) -> Community:
    """Hides the member half-way down the board; the next one becomes the visible middle."""
    conn = await asyncpg.connect(dsn)
    try:
        order = (
            "SELECT user_id FROM xp.members WHERE community_id = $1 AND NOT hidden_from_leaderboards"
            " ORDER BY xp DESC, reached_at OFFSET $2 LIMIT 1"  # the board's order
        )
        hidden = await conn.fetchval(order, community.id, community.count // 2)
        await conn.execute(
            "UPDATE xp.members SET hidden_from_leaderboards = true"
            " WHERE community_id = $1 AND user_id = $2",
            community.id,
            hidden,
        )
        middle = await conn.fetchval(order, community.id, community.count // 2)
    finally:
        await conn.close()
    return Community(community.label, community.id, community.count, middle, hidden)


def reconcile(env: dict[str, str]) -> tuple[float, float, int]:
    """xp's reconcile task as its CronJob runs it: (seconds, peak RSS in MB, exit code). The
    peak is the task's own (VmHWM, read while it runs): its rusage would count the pages of
    this process, which it started from."""
    started = time.perf_counter()
    task = subprocess.Popen([sys.executable, "-m", "wee5_xp.tasks", "reconcile"], env=env)
    peak = 0.0
    while task.poll() is None:
        with contextlib.suppress(OSError, KeyError):
            peak = max(peak, rss_mb(task.pid)[1])
        time.sleep(0.1)
    return time.perf_counter() - started, peak, task.returncode


def admin(stack: Stack) -> dict[str, str]:
    """A platform admin's bearer (it sees hidden members), minted per use: it lives 15 min."""
    return bearer(GatewaySettings(jwt_secret=stack.env["WEE5_JWT_SECRET"]), platform_admin=True)


async def check_ranks(stack: Stack, community: Community) -> None:
    """Both middle members rank where Postgres puts them: the board is built, and whole."""
    api = f"{stack.base_url}/api/v1/communities/{community.id}/members"
    async with httpx.AsyncClient(headers=admin(stack), timeout=30) as http:
        for user_id in (community.middle, community.hidden):
            reply = await http.get(f"{api}/{user_id}")
            if reply.status_code != 200 or reply.json()["rank"] != community.count // 2 + 1:
                raise SystemExit(
                    f"bench: {user_id} should rank {community.count // 2 + 1}:"
                    f" {reply.status_code} {reply.text[:300]}"
                )


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # under /api/v1/communities/{id}, with {middle} or {hidden}
    script: str | None = None  # bench/lua/ script, given the middle member and a run tag

    def run(
        self, stack: Stack, community: Community, attempt: str, args: argparse.Namespace
    ) -> wrk.WrkRun:
        path = self.path.format(middle=community.middle, hidden=community.hidden)
        return wrk.run(
            self.name,
            f"{stack.base_url}/api/v1/communities/{community.id}{path}",
            connections=args.connections,
            seconds=args.seconds,
            headers=admin(stack),
            script=wrk.LUA / self.script if self.script else None,
            script_args=[community.middle, f"{RUN}-{attempt}"] if self.script else None,
        )


CASES = (
    Case("leaderboard top 25", "/leaderboard?limit=25"),
    Case("member's rank (middle)", "/members/{middle}"),
    Case("hidden member's rank (middle)", "/members/{hidden}"),
    Case("rank card PNG (middle)", "/members/{middle}/card.png"),
    Case("award points (middle)", "/points", script="points.lua"),
)


def best(runs: list[wrk.WrkRun]) -> wrk.WrkRun:
    """The least disturbed of a case's runs: other work on the machine only slows a run."""
    return max(runs, key=lambda run: run.rate)


def compare(large: wrk.WrkRun, small: wrk.WrkRun) -> bool:
    """Prints a case at both sizes with the ratios; True when it is flat."""
    if not (large.requests and small.requests):
        raise SystemExit(f"bench: {large.name}: no answer within a run; try more --seconds")
    latency = large.p50_ms / small.p50_ms
    throughput = large.rate / small.rate
    flat = latency <= WORSE and throughput >= 1 / WORSE
    print(f"  large {large.line()}")
    print(f"  small {small.line()}")
    verdict = "flat" if flat else f"NOT FLAT (worse than {WORSE}x)"
    print(f"        large/small: p50 {latency:.2f}x, throughput {throughput:.2f}x  {verdict}")
    return flat


@dataclass
class Reads:
    """Latencies (ms) and statuses of one kind of read while a board was rebuilt."""

    name: str
    latencies: list[float]
    failed: list[str]
    updating: int = 0

    def line(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"{self.name:<34} {len(self.latencies):>6} reads  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
            f"   non-200 {len(self.failed)}   marked updating {self.updating}"
        )


async def rebuild_under_reads(
    stack: Stack, community: Community, readers: int
) -> tuple[float, Reads, Reads]:
    """Flushes the community's boards from Redis and reads while xp rebuilds them: (seconds
    from the first read to the swap, board reads, card reads)."""
    redis = create_redis(stack.env["WEE5_REDIS_URL"])
    prefix = f"{stack.env['WEE5_REDIS_PREFIX']}:lb:{community.id}"
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        await redis.unlink(key)
    api = f"{stack.base_url}/api/v1/communities/{community.id}"
    boards, cards = (
        Reads("board pages during the rebuild", [], []),
        Reads("cards during it", [], []),
    )
    swapped = asyncio.Event()
    fallback_top: list[object] = []

    async def read(http: httpx.AsyncClient, n: int) -> None:
        pick = random.Random(n)
        while not swapped.is_set():
            if n % 2:
                reads, path = cards, f"/members/user_{pick.randrange(community.count)}"
            else:
                reads, path = boards, f"/leaderboard?limit={pick.randrange(1, 101)}"
            started = time.perf_counter()
            reply = await http.get(f"{api}{path}")
            reads.latencies.append((time.perf_counter() - started) * 1000)
            if reply.status_code != 200:
                reads.failed.append(f"{path}: {reply.status_code} {reply.text[:200]}")
            elif reply.json().get("updating"):
                reads.updating += 1

    async def built() -> None:
        # xp marks the board's index when it swaps the board in; nothing here is told.
        while await redis.hget(f"{prefix}:all:ix", "") != "1":  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    try:
        async with httpx.AsyncClient(headers=admin(stack), timeout=30) as http:
            started = time.perf_counter()
            first = await http.get(f"{api}/leaderboard?limit=25")
            fallback_top.extend(first.json()["entries"])
            tasks = [asyncio.create_task(read(http, n)) for n in range(readers)]
            await built()
            seconds = time.perf_counter() - started
            swapped.set()
            await asyncio.gather(*tasks)
            after = (await http.get(f"{api}/leaderboard?limit=25")).json()
    finally:
        await redis.aclose()
    if not first.json().get("updating"):
        raise SystemExit("bench: the first read after the flush was not marked updating")
    if after["entries"] != fallback_top:
        raise SystemExit("bench: the rebuilt board's top 25 differs from the fallback's")
    if boards.failed or cards.failed:
        raise SystemExit(f"bench: reads failed during the rebuild: {boards.failed + cards.failed}")
    return seconds, boards, cards


async def forget_boards(env: dict[str, str]) -> None:
    """This run's boards (a million entries) leave the shared Redis with it."""
    redis = create_redis(env["WEE5_REDIS_URL"])
    try:
        async for key in redis.scan_iter(match=f"{env['WEE5_REDIS_PREFIX']}:*", count=1000):
            await redis.unlink(key)
    finally:
        await redis.aclose()


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of a process in MB."""
    status = (Path("/proc") / str(pid) / "status").read_text()
    fields = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if "kB" in line}
    return int(fields["VmRSS"]) / 1024, int(fields["VmHWM"]) / 1024


async def main(args: argparse.Namespace) -> None:
    env = bench_env() | {
        f"WEE5_RATE_LIMIT_{kind.upper()}": UNLIMITED for kind in RATE_LIMITED_CLASSES
    }
    await reset_database(env["WEE5_DATABASE_URL"])
    stack = start_stack(env, Path("/tmp"), WEE5_XP_COOLDOWN_SECONDS="0")
    dsn = plain_dsn(env["WEE5_DATABASE_URL"])
    try:
        print(f"WEE5 scale bench: {args.large:,} members against {args.small:,}")
        large, small = [
            Community(label, f"exp_scale{label}{RUN}", count)
            for label, count in (("large", args.large), ("small", args.small))
        ]
        for community in (large, small):
            took = await seed(dsn, community.id, community.count)
            print(
                f"seeded {community.count:>9,} members and ledger entries by COPY in {took:5.1f} s"
            )
        large, small = await hide_middle(dsn, large), await hide_middle(dsn, small)
        seconds, peak, code = reconcile(stack.env)
        print(
            f"reconcile of both communities ({args.large + args.small:,} members):"
            f" {seconds:.1f} s, peak RSS {peak:.0f} MB, exit {code}"
        )
        if code != 0:
            raise SystemExit(f"bench: reconcile failed:\n{stack.output()}")
        for community in (large, small):
            await check_ranks(stack, community)
        print(f"boards flushed from Redis and read while rebuilt, {args.readers} readers:")
        for community in (large, small):
            seconds, boards, cards = await rebuild_under_reads(stack, community, args.readers)
            print(f"  {community.label} ({community.count:,}): rebuilt in {seconds:.1f} s")
            print(f"    {boards.line()}")
            print(f"    {cards.line()}")
        print(
            f"wrk, {args.connections} connections, {args.seconds} s a run; large and small"
            f" take turns, {args.rounds} runs each, the best shown:"
        )
        flat = 0
        for case in CASES:
            runs: dict[str, list[wrk.WrkRun]] = {"large": [], "small": []}
            for attempt in range(args.rounds):
                for community in (large, small):
                    tag = f"{community.label}{attempt}"
                    runs[community.label].append(case.run(stack, community, tag, args))
            flat += compare(best(runs["large"]), best(runs["small"]))
        print(
            f"{flat} of {len(CASES)} cases flat (within {WORSE}x with"
            f" {args.large // args.small}x the members)"
        )
        processes = service_pids(stack)
        for service in ("xp", "gateway"):
            now, peak = rss_mb(processes[service])
            limit = f" (limit {XP_RSS_LIMIT_MB} MB)" if service == "xp" else ""
            print(f"RSS {service:<8} now {now:6.1f} MB   peak {peak:6.1f} MB{limit}")
    finally:
        stop_stack(stack)
        await drop_database(env["WEE5_DATABASE_URL"])
        await forget_boards(env)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--readers", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
