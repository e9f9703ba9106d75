"""`make bench`: throughput and latency of the vertical slice through the real processes.

Starts the platform the way `make up` does, in a database, Redis prefix and NATS prefix of
its own, then measures over real HTTP:
  1. first deliveries of signed `chat.message.created` webhooks (gateway → xp → Postgres/Redis),
  2. redeliveries of the same webhook ids (answered from the gateway's receipts),
  3. leaderboard reads,
and prints requests per second, latency percentiles, and the ratios between them. In the same
run, pgbench (bench/pgbench.py) runs the award path's SQL one event per transaction against a
scratch database with the same schema, and the bench prints WEE5's sustained ingest against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench.pgbench import run_pgbench
from tests.support.gateway import bearer
from tests.support.stack import SECRET, start_stack, stop_stack
from tests.support.whop import chat_message_created, sign_standard
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_gateway.config import GatewaySettings
from wee5_kit.grpc import channel

RUN = uuid.uuid4().hex[:6]
DATABASE = f"wee5_bench_{RUN}"


def bench_env() -> dict[str, str]:
    return {
        # A database of this run: benches of several checkouts may run at once.
        "WEE5_DATABASE_URL": f"postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/{DATABASE}",
        "WEE5_REDIS_URL": "redis://127.0.0.1:6379/14",
        "WEE5_REDIS_PREFIX": f"bench{RUN}",
        "WEE5_EVENT_PREFIX": f"bench{RUN}",
        "WEE5_LOG_LEVEL": "WARNING",
        "WEE5_JWT_SECRET": f"bench-jwt-secret-{RUN}-{RUN}-{RUN}-{RUN}",
        # Every client here is 127.0.0.1 and one account: measure the API (the limiter still
        # runs and counts), not where its limits are set.
        **{
            f"WEE5_RATE_LIMIT_{kind}": "100000000/minute"
            for kind in ("READ", "PUBLIC_READ", "WRITE", "ACTIVITIES")
        },
    }


async def reset_database(url: str) -> None:
    admin = create_async_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        await conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    await admin.dispose()


async def drop_database(url: str) -> None:
    admin = create_async_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    await admin.dispose()


async def run_load(
    name: str, count: int, concurrency: int, request: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    failures = 0
    next_index = 0

    async def worker() -> None:
        nonlocal next_index, failures
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            reply = await request(index)
            latencies.append((time.perf_counter() - started) * 1000)
            if reply.status_code != 200:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<24} {count:>6} req  {rate:>8.0f} req/s   p50 {cuts[49]:6.1f} ms"
        f"   p95 {cuts[94]:6.1f} ms   p99 {cuts[98]:6.1f} ms   non-200 {failures}"
    )
    return rate, latencies


async def run_grpc_ingest(
    addr: str, community: str, count: int, members: int, concurrency: int
) -> tuple[float, float, float]:
    """xp's own ingest, without the gateway: RecordActivity over gRPC from this process."""
    latencies: list[float] = []
    next_index = 0
    async with channel(addr) as chan:
        xp = xp_pb2_grpc.XpServiceStub(chan)

        async def worker() -> None:
            nonlocal next_index
            while next_index < count:
                index = next_index
                next_index += 1
                request = xp_pb2.RecordActivityRequest(
                    activity=xp_pb2.Activity(
                        community_id=community,
                        user_id=f"user_{index % members}",
                        kind=xp_pb2.ACTIVITY_KIND_MESSAGE,
                        source=xp_pb2.SOURCE_API,
                        idempotency_key=f"grpc_{index}",
                    )
                )
                started = time.perf_counter()
                await xp.RecordActivity(request)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = count / (time.perf_counter() - started)
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{'xp RecordActivity gRPC':<24} {count:>6} req  {rate:>8.0f} ev/s    p50 {cuts[49]:6.1f} ms"
        f"                 p99 {cuts[98]:6.1f} ms"
    )
    return rate, cuts[49], cuts[98]


async def main(messages: int, members: int, concurrency: int, pgbench_seconds: int) -> None:
    env = bench_env()
    await reset_database(env["WEE5_DATABASE_URL"])
    stack = start_stack(env, Path("/tmp"), WEE5_XP_COOLDOWN_SECONDS="0")
    community = f"exp_bench{RUN}"
    deliveries = []
    for i in range(messages):
        payload = chat_message_created(experience_id=community, user_id=f"user_{i % members}")
        body = json.dumps(payload).encode()
        deliveries.append((body, f"msg_{uuid.uuid4().hex}"))
    try:
        settings = GatewaySettings(jwt_secret=env["WEE5_JWT_SECRET"])
        async with httpx.AsyncClient(
            base_url=stack.base_url,
            timeout=30,
            limits=httpx.Limits(max_connections=concurrency),
            headers=bearer(settings, platform_admin=True),
        ) as client:

            async def deliver(index: int) -> httpx.Response:
                body, webhook_id = deliveries[index]
                headers = sign_standard(SECRET, body, webhook_id, int(time.time()))
                return await client.post("/webhooks/whop", content=body, headers=headers)

            async def read_board(_index: int) -> httpx.Response:
                return await client.get(f"/api/v1/communities/{community}/leaderboard?limit=25")

            print(
                f"WEE5 bench: {messages} messages from {members} members, concurrency {concurrency}"
            )
            first, _ = await run_load("webhook, first delivery", messages, concurrency, deliver)
            again, _ = await run_load("webhook, redelivery", messages, concurrency, deliver)
            reads, _ = await run_load("leaderboard read", messages, concurrency, read_board)
            ingest, _, _ = await run_grpc_ingest(
                stack.env["WEE5_XP_ADDR"],
                f"{community}_grpc",
                messages * 2,
                members,
                concurrency * 2,
            )
            board = (
                await client.get(f"/api/v1/communities/{community}/leaderboard?limit=1")
            ).json()
        total = sum(1 for _ in deliveries) * 20
        print(f"ratio redelivery / first delivery throughput: {again / first:.2f}x")
        print(f"ratio leaderboard read / first delivery throughput: {reads / first:.2f}x")
        print(f"check: top entry {board['entries'][0]} (expected {total // members} XP each)")
        yardstick = await run_pgbench(
            env["WEE5_DATABASE_URL"],
            clients=concurrency,
            seconds=pgbench_seconds,
            members=members,
        )
        print(
            f"{'pgbench, 1 event/tx':<24} {yardstick.transactions:>6} tx   "
            f"{yardstick.tps:>8.0f} tx/s    p50 {yardstick.p50_ms:6.1f} ms"
            f"                 p99 {yardstick.p99_ms:6.1f} ms"
        )
        print(
            f"ratio xp ingest (gRPC, group commit) / pgbench one event per transaction: "
            f"{ingest / yardstick.tps:.2f}x"
        )
        print(
            f"ratio end-to-end ingest (signed webhooks through the gateway) / pgbench: "
            f"{first / yardstick.tps:.2f}x"
        )
    finally:
        stop_stack(stack)
        await drop_database(env["WEE5_DATABASE_URL"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.members, args.concurrency, args.pgbench_seconds))
