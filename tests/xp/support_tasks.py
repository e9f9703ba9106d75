"""Running `python -m wee5_xp.tasks` jobs from tests: in-process (same code path as main) or
as a real subprocess, with the tests' database, Redis and subject prefix."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_xp import tasks
from wee5_xp.config import XpSettings
from wee5_xp.models import LedgerEntry, Member

# No waiting between pages or retries in tests.
FAST = {"mee6_page_delay_seconds": 0.0, "provider_backoff_seconds": 0.01, "provider_attempts": 4}


async def run_task(*argv: str, **settings: Any) -> int:
    """Runs a job in this process, exactly as `main` would after parsing."""
    return await tasks.run(tasks.parse(argv), XpSettings(**{**FAST, **settings}))


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


async def run_task_process(test_env: dict[str, str], *argv: str, **env: str) -> Finished:
    """Runs `python -m wee5_xp.tasks …` as a child process (the CronJob's command line)."""
    variables = {**os.environ, **test_env, **{f"WEE5_{k.upper()}": str(v) for k, v in FAST.items()}}
    variables.update({f"WEE5_{key.upper()}": value for key, value in env.items()})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wee5_xp.tasks",
        *argv,
        env=variables,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


async def ledger(
    sessions: async_sessionmaker[AsyncSession], community_id: str, reason: str | None = None
) -> list[tuple[str, int, str]]:
    """(user, delta, reason) of the community's ledger entries, oldest first."""
    async with sessions() as session:
        query = select(LedgerEntry).where(LedgerEntry.community_id == community_id)
        if reason is not None:
            query = query.where(LedgerEntry.reason == reason)
        rows = await session.scalars(query.order_by(LedgerEntry.id))
        return [(row.user_id, row.delta, row.reason) for row in rows]


async def totals(sessions: async_sessionmaker[AsyncSession], community_id: str) -> dict[str, int]:
    """Each member's XP, checked equal to the sum of their ledger entries."""
    async with sessions() as session:
        members = {
            row.user_id: row.xp
            for row in await session.scalars(
                select(Member).where(Member.community_id == community_id)
            )
        }
        sums = {
            row.user_id: int(row.total)
            for row in await session.execute(
                select(LedgerEntry.user_id, func.sum(LedgerEntry.delta).label("total"))
                .where(LedgerEntry.community_id == community_id)
                .group_by(LedgerEntry.user_id)
            )
        }
    assert sums == members
    return members
