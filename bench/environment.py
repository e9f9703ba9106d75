"""What every `make bench` case shares: a database, Redis prefix and NATS prefix of the run's
own (benches of several checkouts may run at once), and the settings that let one client on
127.0.0.1 load the stack without meeting the rate limits it still counts."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from scripts.reset import all_streams, delete_redis_keys, delete_streams
from wee5_kit.events import EventBus
from wee5_kit.settings import KitSettings

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
    """Forgets the run: its database, and its Redis keys and NATS streams (`make reset`'s way),
    which would otherwise pile up run after run."""
    admin = create_async_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    await admin.dispose()
    env = bench_env()
    await delete_redis_keys(env["WEE5_REDIS_URL"], env["WEE5_REDIS_PREFIX"])
    await delete_streams(KitSettings().nats_url, env["WEE5_EVENT_PREFIX"])


async def quiet(env: dict[str, str], limit_seconds: float = 120) -> tuple[float, int]:
    """Waits until the stack has worked through what the cases left behind: no event waiting
    in an outbox of xp to be published, none in a stream of this run waiting for a consumer
    or its ack (the batch intake leaves tens of thousands for the relay and rewards). A
    yardstick measured meanwhile would share the machine with them. Returns the seconds
    waited and what was left when `limit_seconds` ran out (0: quiet)."""
    engine = create_async_engine(env["WEE5_DATABASE_URL"], poolclass=NullPool)
    bus = await EventBus.connect(KitSettings().nats_url, env["WEE5_EVENT_PREFIX"], "wee5-bench")
    started = time.perf_counter()
    try:
        while True:
            async with engine.connect() as conn:
                left = int(
                    await conn.scalar(
                        text("SELECT count(*) FROM xp.outbox WHERE published_at IS NULL")
                    )
                    or 0
                )
            for stream in await all_streams(bus.js):
                name = stream.config.name or ""
                if not name.startswith(bus.stream_name("")):
                    continue
                for consumer in await bus.js.consumers_info(name):
                    left += (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
            waited = time.perf_counter() - started
            if left == 0 or waited >= limit_seconds:
                return waited, left
            await asyncio.sleep(0.5)
    finally:
        await bus.close()
        await engine.dispose()
