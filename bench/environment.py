"""What every `make bench` case shares: a database, Redis prefix and NATS prefix of the run's
own (benches of several checkouts may run at once), and the settings that let one client on
127.0.0.1 load the stack without meeting the rate limits it still counts."""

from __future__ import annotations

import uuid

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from scripts.reset import delete_redis_keys, delete_streams
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
