"""The kit's own statements: setting up a service's storage (the database and the schema),
and named Postgres advisory locks that tasks and imports serialize on."""

from __future__ import annotations

import zlib

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


async def database_exists(conn: AsyncConnection, name: str) -> bool:
    found = await conn.scalar(
        text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
    )
    return found is not None


async def select_one(conn: AsyncConnection) -> None:
    """The smallest round trip: a database that answers it is up."""
    await conn.execute(text("SELECT 1"))


async def create_database(conn: AsyncConnection, name: str) -> None:
    quoted = name.replace('"', '""')
    await conn.execute(text(f'CREATE DATABASE "{quoted}"'))


async def drop_database(conn: AsyncConnection, name: str) -> None:
    """Drops the database even while processes are connected to it (they are disconnected)."""
    quoted = name.replace('"', '""')
    await conn.execute(text(f'DROP DATABASE IF EXISTS "{quoted}" WITH (FORCE)'))


async def lock_schema_migrations(conn: AsyncConnection, schema: str) -> None:
    """Waits for, then holds until the transaction ends, the lock that makes concurrent
    migrations of `schema` (two replicas, a Job and a pod) run one after the other."""
    lock_id = zlib.crc32(f"wee5-migrate-{schema}".encode())
    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


async def create_schema(conn: AsyncConnection, schema: str) -> None:
    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def advisory_lock_key(*parts: str) -> int:
    """A stable 32-bit advisory-lock key for a name such as ("wee5-xp", "import", community)."""
    return zlib.crc32("\x1f".join(parts).encode())


async def lock_for_transaction(session: AsyncSession | AsyncConnection, key: int) -> None:
    """Waits for, then holds until the transaction ends, the advisory lock `key`."""
    await session.execute(select(func.pg_advisory_xact_lock(key)))


async def try_advisory_lock(conn: AsyncConnection, key: int) -> bool:
    """Takes the session-level advisory lock `key` unless another connection holds it (then
    False, without waiting)."""
    return bool(await conn.scalar(select(func.pg_try_advisory_lock(key))))


async def advisory_unlock(conn: AsyncConnection, key: int) -> None:
    await conn.execute(select(func.pg_advisory_unlock(key)))


async def outbox_backlog(session: AsyncSession, table: Table) -> tuple[int, float]:
    """Rows of an outbox not yet published, and the age in seconds of the oldest (0: none)."""
    waiting, oldest = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.extract("epoch", func.now() - func.min(table.c.created_at)), 0),
            ).where(table.c.published_at.is_(None))
        )
    ).one()
    return int(waiting), float(oldest)
