"""A database of a test's own, empty, for migrating step by step (data written at one
revision, then upgraded)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


@asynccontextmanager
async def scratch_database(database_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """Its URL and an engine on it; dropped afterwards."""
    url = make_url(database_url)
    name = f"{url.database}_scratch_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    scratch_url = url.set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(scratch_url, poolclass=NullPool)
    try:
        yield scratch_url, engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
