"""The kit's own statements for setting up a service's storage: the database and the schema."""

from __future__ import annotations

import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def database_exists(conn: AsyncConnection, name: str) -> bool:
    found = await conn.scalar(
        text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
    )
    return found is not None


async def create_database(conn: AsyncConnection, name: str) -> None:
    quoted = name.replace('"', '""')
    await conn.execute(text(f'CREATE DATABASE "{quoted}"'))


async def lock_schema_migrations(conn: AsyncConnection, schema: str) -> None:
    """Waits for, then holds until the transaction ends, the lock that makes concurrent
    migrations of `schema` (two replicas, a Job and a pod) run one after the other."""
    lock_id = zlib.crc32(f"wee5-migrate-{schema}".encode())
    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


async def create_schema(conn: AsyncConnection, schema: str) -> None:
    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
