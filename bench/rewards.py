"""Throughput of reward delivery: N members reach level 5; the Whop worker applies their free
days at a local server speaking Whop's API, with the real xp answering GetMembership.

    uv run --frozen python -m bench.rewards --rewards 200 --workers 2

Runs in a database of its own (created, migrated and dropped) and prints rewards per second
for one worker and for `--workers` workers claiming side by side (SKIP LOCKED), and checks that
every reward was applied exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.whop_api import FakeWhop, serving
from wee5.events.v1 import events_pb2
from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.db import create_engine, create_sessionmaker
from wee5_kit.events import Outbox, new_meta
from wee5_kit.grpc import channel
from wee5_kit.logging import configure
from wee5_kit.migrations import upgrade
from wee5_rewards.delivery import RetryPolicy, RewardDelivery
from wee5_rewards.memberships import Memberships
from wee5_rewards.models import outbox
from wee5_rewards.service import RewardsService
from wee5_rewards.whop import WhopClient
from wee5_xp.config import XpSettings
from wee5_xp.server import build as build_xp

RUN = uuid.uuid4().hex[:6]
URL = f"postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/wee5_bench_rewards_{RUN}"


async def _admin(statement: str) -> None:
    admin = create_async_engine(
        make_url(URL).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(statement))
    await admin.dispose()


async def _round(count: int, workers: int, xp_addr: str, whop: FakeWhop) -> float:
    engine = create_engine(URL)
    sessions = create_sessionmaker(engine)
    community_id = f"exp_{uuid.uuid4().hex[:10]}"
    xp_channel = channel(xp_addr)
    xp = xp_pb2_grpc.XpServiceStub(xp_channel)
    for i in range(count):
        membership = xp_pb2.Membership(
            company_id="biz_bench",
            user_id=f"u{i}",
            membership_id=whop.add_membership("biz_bench"),
            status="active",
            active=True,
        )
        membership.updated_at.GetCurrentTime()
        await xp.SetMembership(
            xp_pb2.SetMembershipRequest(membership=membership, community_id=community_id)
        )
    async with sessions.begin() as session:
        for i in range(count):
            event = events_pb2.LevelUp(
                meta=new_meta(community_id), user_id=f"u{i}", from_level=4, to_level=5
            )
            await RewardsService().record_level_up(session, event)
    clients = [WhopClient(whop.base_url, whop.api_key) for _ in range(workers)]
    deliveries = [
        RewardDelivery(sessions, Outbox(outbox), Memberships(xp), client, RetryPolicy())
        for client in clients
    ]
    applied_before = len(whop.applications("add_free_days"))
    started = time.perf_counter()

    async def drain(delivery: RewardDelivery) -> None:
        while await delivery.deliver_due():
            pass

    await asyncio.gather(*(drain(delivery) for delivery in deliveries))
    elapsed = time.perf_counter() - started
    applied = len(whop.applications("add_free_days")) - applied_before
    assert applied == count, f"{applied} applications for {count} rewards"
    for client in clients:
        await client.close()
    await xp_channel.close(None)
    await engine.dispose()
    return elapsed


async def main(count: int, workers: int) -> None:
    configure("bench", "WARNING")
    await _admin(f'CREATE DATABASE "wee5_bench_rewards_{RUN}"')
    try:
        for service in ("xp", "rewards"):
            await asyncio.to_thread(upgrade, f"wee5_{service}", URL)
        xp_addr = "127.0.0.1:0"
        xp_server = await build_xp(
            XpSettings(database_url=URL, xp_addr=xp_addr, event_prefix=f"bench{RUN}")
        )
        await xp_server.start()
        xp_addr = f"127.0.0.1:{xp_server.port}"
        whop = FakeWhop()
        async with serving(whop, "/api/v1") as url:
            whop.base_url = url
            await _round(20, 1, xp_addr, whop)  # warm-up: connections, caches, plans
            for n in sorted({1, workers}):
                elapsed = await _round(count, n, xp_addr, whop)
                print(
                    f"{count} rewards, {n} worker(s): {elapsed:.2f} s, "
                    f"{count / elapsed:.0f} rewards/s, each applied once"
                )
        await xp_server.stop()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "wee5_bench_rewards_{RUN}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.rewards")
    parser.add_argument("--rewards", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.rewards, args.workers))
