"""The transaction boundary of awards made outside RecordActivity: points, imports and syncs.

Work runs in `XpService.transaction()`: once it has committed, the standings its awards
collected (`XpService.award_many` keeps them in `session.info`) are mirrored into the Redis
leaderboards; if it fails, the cooldowns it claimed are released.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.logging import get_logger
from wee5_xp.leaderboards import Leaderboards, Standing
from wee5_xp.service import XpService

log = get_logger("wee5.xp")
T = TypeVar("T")


async def commit_awards(
    service: XpService,
    work: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """Runs `work` in a transaction of its own, commits, then updates the leaderboards."""
    async with service.transaction() as session:
        return await work(session)


async def mirror_standings(leaderboards: Leaderboards, standings: Iterable[Standing]) -> None:
    """Writes committed totals into the boards (consumers, whose transaction the kit owns); a
    failure only logs, because the boards are rebuilt from Postgres when missing."""
    batch = list(standings)
    if not batch:
        return
    try:
        await leaderboards.record(batch)
    except Exception:
        log.exception("leaderboard update failed")
