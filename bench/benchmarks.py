"""`make bench`: benchmark results of a category with 100,000 submissions, over real gRPC.

Seeds a scratch database (`wee5_bench_benchmarks`, dropped at the end) with one community's
compensation submissions via COPY, starts the benchmarks process the way production runs it
(`python -m wee5_benchmarks serve`), and times GetResults calls one after another: the first
(cold: the process loads the category's columns), then repeated calls without and with
grouping, filters and the caller's percentile, and reads right after a write (the snapshot
catches up with one indexed query). Prints p50/p99 per case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import numpy as np
from nats.js.errors import NotFoundError
from sqlalchemy import make_url

from tests.conftest import free_port
from wee5.benchmarks.v1 import benchmarks_pb2, benchmarks_pb2_grpc
from wee5_benchmarks.categories import Category, current_schema, typed_values
from wee5_kit.db import ensure_database
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel, check_health
from wee5_kit.migrations import upgrade

RUN = uuid.uuid4().hex[:6]
DATABASE = "wee5_bench_benchmarks"
URL = f"postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/{DATABASE}"
COMMUNITY = f"exp_bench{RUN}"
ROLES = ["sdr", "bdr", "account_executive", "account_manager", "sales_manager", "head_of_sales", "founder", "other"]  # fmt: skip
ROLE_PAY = [48_000, 52_000, 85_000, 70_000, 110_000, 150_000, 120_000, 60_000]
REGIONS = [option.value for option in current_schema(Category.COMPENSATION).by_name["region"].options]  # fmt: skip
REGION_PAY = [1.0, 0.45, 0.8, 0.7, 0.5, 0.3, 0.6, 0.85]


def plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def answers_of(count: int, seed: int = 5) -> list[dict[str, object]]:
    """Plausible compensation answers: pay by role and region, log-normal spread."""
    rng = np.random.default_rng(seed)
    roles = rng.choice(len(ROLES), size=count, p=[0.25, 0.15, 0.2, 0.1, 0.1, 0.05, 0.1, 0.05])
    regions = rng.choice(
        len(REGIONS), size=count, p=[0.35, 0.08, 0.12, 0.2, 0.05, 0.08, 0.07, 0.05]
    )
    spread = rng.lognormal(0.0, 0.25, size=count)
    people = []
    for i in range(count):
        base = round(ROLE_PAY[roles[i]] * REGION_PAY[regions[i]] * spread[i], -2)
        answers: dict[str, object] = {
            "role": ROLES[roles[i]],
            "region": REGIONS[regions[i]],
            "base_salary": min(base, 1_000_000),
            "team_size": int(rng.integers(1, 60)),
            "years_experience": round(float(rng.uniform(0, 25)), 1),
        }
        if i % 3:
            answers["commission_rate"] = round(float(rng.uniform(2, 20)), 1)
            answers["ote"] = min(round(base * float(rng.uniform(1.3, 2.2)), -2), 2_000_000)
        people.append(answers)
    return people


async def seed(count: int) -> None:
    schema = current_schema(Category.COMPENSATION)
    records = []
    for index, answers in enumerate(answers_of(count)):
        numbers, choices = typed_values(schema, answers)
        records.append(
            (
                uuid.uuid4(),
                COMMUNITY,
                f"user_{index}",
                Category.COMPENSATION.value,
                schema.version,
                1,
                json.dumps(answers),
                numbers,
                choices,
                "accepted",
                False,
                "[]",
                1,
            )
        )
    conn = await asyncpg.connect(plain_dsn(URL))
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "submissions",
            schema_name="benchmarks",
            columns=[
                "id",
                "community_id",
                "user_id",
                "category",
                "schema_version",
                "version",
                "answers",
                "numbers",
                "choices",
                "status",
                "flagged",
                "outliers",
                "revision",
            ],
            records=records,
        )
        await conn.execute(
            "INSERT INTO benchmarks.category_state VALUES ($1, $2, 1)",
            COMMUNITY,
            Category.COMPENSATION.value,
        )
        await conn.execute(
            "INSERT INTO benchmarks.community_settings (community_id, enabled) VALUES ($1, true)",
            COMMUNITY,
        )
        await conn.execute("ANALYZE benchmarks.submissions")
        print(f"seeded {count} submissions by COPY in {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()


async def drop_database() -> None:
    conn = await asyncpg.connect(plain_dsn(URL.replace(DATABASE, "postgres")))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await conn.close()


def start_service(addr: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WEE5_DATABASE_URL": URL,
        "WEE5_BENCHMARKS_ADDR": addr,
        "WEE5_EVENT_PREFIX": f"bench{RUN}",
        "WEE5_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "wee5_benchmarks", "serve", "--no-migrate"],
        env=env,
        start_new_session=True,
    )


async def timed(call: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    latencies = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def report(name: str, latencies: list[float]) -> None:
    if len(latencies) == 1:
        print(f"{name:<52} {latencies[0]:8.1f} ms")
        return
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<52} p50 {statistics.median(latencies):7.2f} ms   p99 {cuts[98]:7.2f} ms"
        f"   ({len(latencies)} calls)"
    )


async def main(count: int, repeat: int) -> None:
    await drop_database()
    await ensure_database(URL)
    await asyncio.to_thread(upgrade, "wee5_benchmarks", URL)
    await seed(count)
    addr = f"127.0.0.1:{free_port()}"
    process = start_service(addr)
    client = channel(addr, default_timeout=30)
    try:
        deadline = time.monotonic() + 30
        while not await check_health(client):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the benchmarks process did not start")
            await asyncio.sleep(0.2)
        stub = benchmarks_pb2_grpc.BenchmarksServiceStub(client)

        def results(**fields: object) -> Callable[[], Awaitable[object]]:
            request = benchmarks_pb2.GetResultsRequest(
                community_id=COMMUNITY, category=benchmarks_pb2.CATEGORY_COMPENSATION, **fields
            )
            return lambda: stub.GetResults(request)

        print(f"WEE5 bench: GetResults over gRPC, {count} compensation submissions")
        report("first call (cold: loads the category)", await timed(results(), 1))
        cases = {
            "all 5 numeric fields": results(),
            "field=base_salary": results(field="base_salary"),
            "field=base_salary, caller percentile": results(field="base_salary", user_id="user_42"),
            "all fields, group_by=region": results(group_by="region"),
            "base_salary, group_by=role, filter region": results(
                field="base_salary", group_by="role", filters={"region": "north_america"}
            ),
            "all fields, filters role & region, caller": results(
                filters={"role": "sdr", "region": "europe"}, user_id="user_7"
            ),
            "field=role (option counts), group_by=region": results(field="role", group_by="region"),
        }
        medians = []
        for name, call in cases.items():
            latencies = await timed(call, repeat)
            medians.append(statistics.median(latencies))
            report(name, latencies)

        async def write_then_read() -> None:
            answers = answers_of(1, seed=int(time.time() * 1000) % 10_000)[0]
            request = benchmarks_pb2.SubmitBenchmarkRequest(
                community_id=COMMUNITY,
                user_id=f"writer_{uuid.uuid4().hex[:8]}",
                category=benchmarks_pb2.CATEGORY_COMPENSATION,
            )
            request.answers.update(answers)
            await stub.SubmitBenchmark(request)

        submits = await timed(write_then_read, max(20, repeat // 5))
        report("SubmitBenchmark (outlier check on 100k)", submits)
        after_write = []
        for _ in range(max(20, repeat // 5)):
            await write_then_read()
            after_write += await timed(results(), 1)
        report("all fields, right after a write (catch-up)", after_write)
        print(f"median of the repeated read cases: {statistics.median(medians):.2f} ms")
    finally:
        await client.close(None)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        await drop_database()
        bus = await EventBus.connect(
            os.environ.get("WEE5_NATS_URL", "nats://127.0.0.1:4222"), f"bench{RUN}", "bench"
        )
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_stream(bus.stream_name("benchmarks"))
        await bus.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.submissions, args.repeat))
