"""Shared fixtures: a database, Redis index and NATS subject prefix of the tests' own.

Everything is real (Postgres, Redis, NATS JetStream); nothing here touches a running `make up`
stack: each run gets its own database `wee5_test_<run>` (dropped at the end), and its Redis keys and
NATS subjects, streams and durables carry a random prefix.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError
from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from wee5_kit.db import create_engine, create_sessionmaker
from wee5_kit.events import EventBus
from wee5_kit.logging import configure
from wee5_kit.migrations import upgrade

SERVICES = ("gateway", "xp", "rewards", "benchmarks", "resources", "billing")
# The package holding each service's `migrations/` (the gateway keeps its tables under `db/`).
MIGRATIONS = {service: f"wee5_{service}" for service in SERVICES} | {"gateway": "wee5_gateway.db"}
RUN_ID = uuid.uuid4().hex[:8]
# The platform admin whose tokens tests mint (tests.support.gateway.bearer): the gateway asks the
# database whether a token's platform admin still is one, so the account exists in every run.
PLATFORM_ADMIN_ID = uuid.UUID("00000000-0000-4000-8000-00000000adad")
# The fixtures that reach Postgres, Redis or NATS. A test using one of them, directly or
# through a fixture that depends on it, needs the infrastructure.
INFRA_FIXTURES = frozenset({"database_url", "engine", "sessionmaker", "redis", "bus"})
E2E_TESTS = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `infra` every test that needs Postgres, Redis, NATS or the real processes, so
    `pytest -m "not infra"` (`make test-unit`) runs the rest without any of them."""
    for item in items:
        # fixturenames is the closure: the fixtures the test asks for and all they depend on.
        needs_infra = INFRA_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        starts_processes = item.get_closest_marker("e2e") or item.path.is_relative_to(E2E_TESTS)
        if needs_infra or starts_processes:
            item.add_marker(pytest.mark.infra)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _test_env() -> dict[str, str]:
    pg = os.environ.get("WEE5_TEST_PG", "postgres:postgres@127.0.0.1:5432")
    return {
        "WEE5_DATABASE_URL": f"postgresql+asyncpg://{pg}/wee5_test_{RUN_ID}",
        "WEE5_REDIS_URL": os.environ.get("WEE5_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "WEE5_REDIS_PREFIX": f"test{RUN_ID}",
        "WEE5_NATS_URL": os.environ.get("WEE5_TEST_NATS_URL", "nats://127.0.0.1:4222"),
        "WEE5_EVENT_PREFIX": f"test{RUN_ID}",
        "WEE5_LOG_LEVEL": "WARNING",
        "WEE5_JWT_SECRET": f"test-jwt-secret-of-run-{RUN_ID}-{RUN_ID}",
    }


@pytest.fixture(scope="session")
def test_env() -> Iterator[dict[str, str]]:
    """The WEE5_* variables of the tests, also exported so settings classes read them."""
    env = _test_env()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    # JSON lines like production (the default console renderer is slow on tracebacks).
    configure("tests", env["WEE5_LOG_LEVEL"])
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


async def create_migrated_database(url: str) -> None:
    """(Re)creates the database named in `url`, empty, with every service's schema migrated."""
    async with _server(url) as conn:
        name = make_url(url).database
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    for service in SERVICES:
        await asyncio.to_thread(upgrade, MIGRATIONS[service], url)
    await grant_platform_admin(url)


async def grant_platform_admin(url: str, account_id: uuid.UUID = PLATFORM_ADMIN_ID) -> None:
    """Makes `account_id` a platform admin in the database at `url` (creating the account if
    it does not exist): the gateway checks the right there, not only in the token, so the
    tokens `bearer(..., platform_admin=True)` mints need it. A stack migrates its own
    database at start: benches and scripts call this once the stack is up."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO gateway.users (id, email, password_hash, display_name, "
                    "is_platform_admin) VALUES (:id, :email, '!', '', true) "
                    "ON CONFLICT (id) DO UPDATE SET is_platform_admin = true"
                ),
                {"id": account_id, "email": f"platform-admin-{account_id}@example.test"},
            )
    finally:
        await engine.dispose()


async def drop_database(url: str) -> None:
    async with _server(url) as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


@asynccontextmanager
async def _server(url: str) -> AsyncIterator[AsyncConnection]:
    admin = create_async_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with admin.connect() as conn:
            yield conn
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
async def database_url(test_env: dict[str, str]) -> AsyncIterator[str]:
    """A fresh database of this run with every service's schema migrated."""
    url = test_env["WEE5_DATABASE_URL"]
    await create_migrated_database(url)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture(scope="session")
async def redis(test_env: dict[str, str]) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(test_env["WEE5_REDIS_URL"], decode_responses=True)
    yield client
    async for key in client.scan_iter(match=f"{test_env['WEE5_REDIS_PREFIX']}:*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="session")
async def bus(test_env: dict[str, str]) -> AsyncIterator[EventBus]:
    bus = await EventBus.connect(test_env["WEE5_NATS_URL"], test_env["WEE5_EVENT_PREFIX"], "tests")
    yield bus
    for context in ("xp", "rewards", "benchmarks", "resources", "billing"):
        try:
            await bus.js.delete_stream(bus.stream_name(context))
        except NotFoundError:
            pass
    await bus.close()


@pytest.fixture
def community_id() -> str:
    """A community of the test's own, so tests never see each other's members."""
    return f"exp_{uuid.uuid4().hex[:12]}"
