"""Named Postgres advisory locks: two runs of a task (or two imports of one community) at once
queue up or step aside instead of doing the same work twice."""

from __future__ import annotations

import zlib

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def lock_key(*parts: str) -> int:
    """A stable 32-bit advisory-lock key for a name such as ("mee6-sync", community_id)."""
    return zlib.crc32("\x1f".join(("wee5-xp", *parts)).encode())


async def lock_for_transaction(session: AsyncSession, *parts: str) -> None:
    """Serializes transactions on the same name until this one ends."""
    await session.execute(select(func.pg_advisory_xact_lock(lock_key(*parts))))


async def try_lock(connection: AsyncConnection, *parts: str) -> bool:
    """Takes the named lock for the connection's session unless another holds it (then
    False, without waiting)."""
    return bool(await connection.scalar(select(func.pg_try_advisory_lock(lock_key(*parts)))))


async def unlock(connection: AsyncConnection, *parts: str) -> None:
    await connection.execute(select(func.pg_advisory_unlock(lock_key(*parts))))
