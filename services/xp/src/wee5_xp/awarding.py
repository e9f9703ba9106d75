"""The transaction boundary of awards made outside RecordActivity: points, imports and syncs.

Work runs in one transaction; once it has committed, the standings its credits collected
(`XpService.credit` keeps them in `session.info`) are mirrored into the Redis leaderboards.
If it fails, the cooldowns it claimed are released so that a retry is judged afresh.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5_kit.logging import get_logger
from wee5_xp.leaderboards import Leaderboards, Standing
from wee5_xp.service import COOLDOWN_CLAIMS, STANDINGS, XpService

log = get_logger("wee5.xp")
T = TypeVar("T")


async def commit_awards(
    sessionmaker: async_sessionmaker[AsyncSession],
    service: XpService,
    work: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """Runs `work` in a transaction of its own, commits, then updates the leaderboards."""
    session = sessionmaker()
    try:
        async with session.begin():
            result = await work(session)
        standings: list[Standing] = list(session.info.get(STANDINGS, []))
    except BaseException:
        await service.cooldowns.release(session.info.get(COOLDOWN_CLAIMS, []))
        raise
    finally:
        await session.close()
    await mirror_standings(service.leaderboards, standings)
    return result


async def mirror_standings(leaderboards: Leaderboards, standings: Iterable[Standing]) -> None:
    """Writes committed totals into the boards; a failure only logs, because the boards are
    rebuilt from Postgres when missing and the next award of the member writes its total."""
    latest: dict[tuple[str, str], Standing] = {}
    for standing in standings:
        # Several credits of one member in one transaction: later totals win.
        key = (standing.community_id, standing.user_id)
        earlier = latest.get(key)
        if earlier is not None:
            standing = Standing(
                standing.community_id,
                standing.user_id,
                standing.total_xp,
                {**earlier.period_xp, **standing.period_xp},
            )
        latest[key] = standing
    for standing in latest.values():
        try:
            await leaderboards.record(standing)
        except Exception:
            log.exception("leaderboard update failed", community_id=standing.community_id)
