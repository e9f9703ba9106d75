"""`make bench`: the stack as `make up` runs it, loaded by wrk (a compiled generator in its own
process), every case against the gateway's own `/healthz` and pgbench in the same run.

Cases, each with requests/s, p50, p99 and errors: `/healthz`; the leaderboard's top 25 read by
a signed-in member; a member's card; the public board read anonymously (each page read once
before its run, as a board that has been read: `read_once`); signed first
deliveries of Whop webhooks (pre-signed, each id once); redeliveries of webhooks already
received; the activity intake one by one and in batches of 1,000; pgbench running the award
SQL one event per transaction. Then the ratios the goals are written in, a check that every
acknowledged webhook was counted once, the RSS of every process, and the time the stack took
from start to ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import wrk
from bench.environment import RUN, bench_env, drop_database, quiet, reset_database
from bench.pages import import_members
from bench.pgbench import run_pgbench
from bench.processes import memory_report
from tests.support.gateway import bearer
from tests.support.stack import SECRET, Stack, start_stack, stop_stack
from tests.support.whop import chat_message_created, sign_standard
from wee5_gateway.config import GatewaySettings

REQUESTS = wrk.LUA / "requests.lua"
# First deliveries prepared per second of the run: more than the stack can take, so wrk
# never runs out (it reports when it does, and the bench says so).
WEBHOOKS_PER_SECOND = 5_000
REDELIVERED = 1_000


@dataclass(frozen=True)
class Options:
    members: int
    connections: int
    seconds: int
    pgbench_seconds: int
    only: frozenset[str]  # case names to run; empty: all

    def runs(self, case: str) -> bool:
        return not self.only or case in self.only


def prepared_webhooks(community: str, count: int, members: int, path: Path) -> list[str]:
    """`count` signed `chat.message.created` deliveries, one per line for requests.lua. All
    name the community's one company, as Whop's do (an experience belongs to one company)."""
    now = int(time.time())
    company = f"biz_{community.removeprefix('exp_')}"
    ids = []
    with path.open("w") as out:
        for index in range(count):
            envelope = chat_message_created(
                experience_id=community, user_id=f"user_{index % members}", company_id=company
            )
            body = json.dumps(envelope, separators=(",", ":")).encode()
            webhook_id = f"msg_{uuid.uuid4().hex}"
            headers = sign_standard(SECRET, body, webhook_id, now)
            fields = "|".join(f"{name}:{value}" for name, value in headers.items())
            out.write(f"POST\t/webhooks/whop\t{fields}\t{body.decode()}\n")
            ids.append(webhook_id)
    return ids


class Bench:
    def __init__(self, stack: Stack, options: Options, workdir: Path) -> None:
        self.stack = stack
        self.options = options
        self.workdir = workdir
        self.base = stack.base_url
        self.runs: dict[str, wrk.WrkRun] = {}

    def load(self, name: str, path: str, **kwargs: object) -> wrk.WrkRun:
        run = wrk.run(
            name,
            f"{self.base}{path}",
            connections=self.options.connections,
            seconds=self.options.seconds,
            **kwargs,  # type: ignore[arg-type]
        )
        self.runs[name] = run
        print(run.line(), flush=True)
        return run

    def replay(self, name: str, requests: Path, *, cycle: bool) -> wrk.WrkRun:
        return self.load(
            name,
            "/",
            script=REQUESTS,
            script_args=[str(requests), "cycle" if cycle else "once", "2"],
        )


async def prepare_member(http: httpx.AsyncClient, community: str, user_id: str) -> str:
    """An account with the member role in `community`, linked to `user_id`: its bearer."""
    email = f"reader-{RUN}@bench.wee5.local"
    registered = await http.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "bench-password-123", "display_name": "Reader"},
    )
    registered.raise_for_status()
    account_id = registered.json()["account"]["id"]
    granted = await http.put(
        f"/api/v1/communities/{community}/roles/{account_id}",
        json={"role": "member", "member_user_id": user_id},
    )
    granted.raise_for_status()
    return str(account_id)


@dataclass(frozen=True)
class Prepared:
    community: str  # 2,000 members (`--members`), read and written
    public: str  # as many, on a public board
    middle: str  # a member in the middle of the board
    member: dict[str, str]  # the bearer of an account linked to `middle`
    api_key: str  # activities:write and xp:read in `community`
    fresh: Path  # signed webhooks never delivered
    redelivered: Path  # signed webhooks delivered once already


async def prepare(stack: Stack, options: Options, settings: GatewaySettings) -> Prepared:
    community, public = f"exp_bench{RUN}", f"exp_public{RUN}"
    workdir = Path(stack.log).parent
    admin = bearer(settings, platform_admin=True)
    async with httpx.AsyncClient(base_url=stack.base_url, headers=admin, timeout=30) as http:
        for board in (community, public):
            await import_members(stack.env["WEE5_XP_ADDR"], board, options.members)
        visible = await http.put(
            f"/api/v1/communities/{public}/leaderboard-settings", json={"visibility": "public"}
        )
        visible.raise_for_status()
        middle = f"user_{options.members // 2}"
        account_id = await prepare_member(http, community, middle)
        api_key = await create_api_key(http, community)
        redelivered = workdir / "redelivered.tsv"
        prepared_webhooks(community, REDELIVERED, options.members, redelivered)
        await deliver_once(http, redelivered)
    fresh = workdir / "first.tsv"
    prepared_webhooks(community, WEBHOOKS_PER_SECOND * options.seconds, options.members, fresh)
    member = bearer(settings, uuid.UUID(account_id))
    return Prepared(community, public, middle, member, api_key, fresh, redelivered)


def read_cases(p: Prepared) -> list[tuple[str, str, dict[str, str]]]:
    """(name, path, headers) of each read case."""
    return [
        (
            "leaderboard top 25 (member)",
            f"/api/v1/communities/{p.community}/leaderboard?limit=25",
            p.member,
        ),
        ("member card (member)", f"/api/v1/communities/{p.community}/members/{p.middle}", p.member),
        (
            "public board top 25 (anonymous)",
            f"/api/v1/communities/{p.public}/leaderboard?limit=25",
            {},
        ),
    ]


async def read_once(base_url: str, p: Prepared) -> None:
    """Each read case's page read once, as by a member who opened it before: the runs
    measure the reads of boards that have been read, not the first read after a start (which
    builds the board in xp and fills the gateway's caches, ~90 ms here, once)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for _, path, headers in read_cases(p):
            (await http.get(path, headers=headers)).raise_for_status()


def run_cases(bench: Bench, p: Prepared) -> None:
    options = bench.options
    bench.load("gateway /healthz", "/healthz")
    if options.runs("reads"):
        for name, path, headers in read_cases(p):
            bench.load(name, path, headers=headers)
    if options.runs("webhooks"):
        bench.replay("webhook, first delivery", p.fresh, cycle=False)
        bench.replay("webhook, redelivery", p.redelivered, cycle=True)
    if options.runs("intake"):
        from bench import intake

        for name, case in (
            ("activity intake, one per call", intake.single_intake),
            ("activity intake, batches", intake.batch_intake),
        ):
            run = case(
                bench.base,
                p.community,
                p.api_key,
                connections=options.connections,
                seconds=options.seconds,
            )
            bench.runs[name] = run
            print(run.line(), flush=True)


def verdicts(runs: dict[str, wrk.WrkRun], pgbench_tps: float) -> list[str]:
    """Each goal of the speed issue the run measured, met or not, with its figures."""
    health = runs["gateway /healthz"].rate
    lines = []

    def goal(met: bool, text: str) -> None:
        lines.append(f"{'met   ' if met else 'MISSED'} {text}")

    for name in ("leaderboard top 25 (member)", "member card (member)"):
        if name in runs:
            run = runs[name]
            goal(
                run.rate >= 0.3 * health and run.p99_ms <= 25,
                f"{name}: {run.rate / health:.2f}x healthz (>= 0.30x), p99 {run.p99_ms:.1f} ms "
                "(<= 25 ms)",
            )
    if "webhook, first delivery" in runs:
        first, again = runs["webhook, first delivery"], runs["webhook, redelivery"]
        goal(
            first.rate >= 0.5 * pgbench_tps and first.p99_ms <= 100,
            f"webhook first delivery: {first.rate / pgbench_tps:.2f}x pgbench (>= 0.50x), "
            f"p99 {first.p99_ms:.1f} ms (<= 100 ms)",
        )
        goal(
            again.rate >= 0.5 * health,
            f"webhook redelivery: {again.rate / health:.2f}x healthz (>= 0.50x)",
        )
    if "activity intake, batches" in runs:
        from bench import intake

        rate = runs["activity intake, batches"].rate * intake.BATCH_SIZE
        goal(rate >= 10_000, f"batch intake: {rate:,.0f} activities/s (>= 10,000)")
    return lines


async def main(options: Options) -> None:
    env = bench_env()
    await reset_database(env["WEE5_DATABASE_URL"])
    workdir = Path(f"/tmp/wee5-bench-{RUN}")
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    settings = GatewaySettings(jwt_secret=env["WEE5_JWT_SECRET"])
    started = time.perf_counter()
    stack = start_stack(env, workdir, WEE5_XP_COOLDOWN_SECONDS="0")
    cold_start = time.perf_counter() - started
    at_ready = dict(memory_report(stack.process.pid))
    try:
        prepared = await prepare(stack, options, settings)
        await read_once(stack.base_url, prepared)
        bench = Bench(stack, options, workdir)
        print(
            f"WEE5 bench: boards of {options.members} members, {options.connections} "
            f"connections, {options.seconds} s per case"
        )
        run_cases(bench, prepared)
        waited, left = await quiet(env)
        print(
            f"stack quiet after {waited:.1f} s (what the cases left behind worked through)"
            if not left
            else f"stack NOT quiet after {waited:.0f} s: {left} events still waiting"
        )
        yardstick = await run_pgbench(
            env["WEE5_DATABASE_URL"],
            clients=options.connections,
            seconds=options.pgbench_seconds,
            members=options.members,
        )
        print(
            f"{'pgbench, award SQL 1 event/tx':<34} {yardstick.tps:>9.0f} tx/s   "
            f"p50 {yardstick.p50_ms:6.1f} ms   p99 {yardstick.p99_ms:6.1f} ms"
        )
        memory = memory_report(stack.process.pid)
    finally:
        stop_stack(stack)
    try:
        started = time.perf_counter()
        stack = start_stack(env, workdir, WEE5_XP_COOLDOWN_SECONDS="0")
        warm_start = time.perf_counter() - started
        stop_stack(stack)
    finally:
        await drop_database(env["WEE5_DATABASE_URL"])
    print("memory (RSS) after the run, and when the stack was ready:")
    for name, megabytes in memory:
        print(f"  {name:<20} {megabytes:6.1f} MB  (ready: {at_ready.get(name, 0):6.1f} MB)")
    print(f"start to /readyz: {cold_start:.1f} s on a new database, {warm_start:.1f} s warm")
    print("goals:")
    for line in verdicts(bench.runs, yardstick.tps):
        print(f"  {line}")
    heaviest = max(megabytes for _, megabytes in memory)
    print(
        f"  {'met   ' if heaviest <= 150 else 'MISSED'} every process <= 150 MB RSS "
        f"(largest {heaviest:.1f} MB)"
    )
    print(f"  {'met   ' if warm_start <= 15 else 'MISSED'} warm start <= 15 s ({warm_start:.1f} s)")


async def create_api_key(http: httpx.AsyncClient, community: str) -> str:
    """A key of `community` that may record activities, as a bot would hold it."""
    created = await http.post(
        f"/api/v1/communities/{community}/api-keys",
        json={"name": "bench bot", "scopes": ["activities:write", "xp:read"]},
    )
    created.raise_for_status()
    return str(created.json()["key"])


async def deliver_once(http: httpx.AsyncClient, prepared: Path) -> None:
    """Sends each prepared webhook once, so the redelivery case finds them all received."""
    semaphore = asyncio.Semaphore(16)

    async def send(line: str) -> None:
        _, path, fields, body = line.split("\t", 3)
        headers = dict(pair.split(":", 1) for pair in fields.split("|"))
        async with semaphore:
            reply = await http.post(path, content=body.encode(), headers=headers)
        reply.raise_for_status()

    lines = (await asyncio.to_thread(prepared.read_text)).splitlines()
    await asyncio.gather(*(send(line) for line in lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=[], help="cases: reads webhooks intake")
    args = parser.parse_args()
    options = Options(
        args.members, args.connections, args.seconds, args.pgbench_seconds, frozenset(args.only)
    )
    asyncio.run(main(options))
