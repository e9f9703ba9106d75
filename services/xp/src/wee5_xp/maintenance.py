"""The reconcile and close-streaks CronJob tasks.

`reconcile` proves the read model equals the ledger and repairs it where it does not (member
XP and counters, period XP, levels under the community's curve), then rebuilds every Redis
board of every community, and of every company with a community on its board, from Postgres
and reports the drift it found. `close-streaks` ends the streaks of members who were not
active yesterday (community time zone). Both take a Postgres advisory lock for their
transaction, so two runs at once queue up instead of racing.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from wee5_kit.logging import get_logger
from wee5_kit.queries import lock_for_transaction
from wee5_xp.companies import company_today
from wee5_xp.jobs import TaskContext
from wee5_xp.leaderboards import (
    PERIOD_TTL,
    PERIODS,
    RebuildAbandoned,
    Score,
    local_day,
    period_start,
)
from wee5_xp.locks import xp_lock
from wee5_xp.progress import progress
from wee5_xp.repository import CompanyBoardRepository, MaintenanceRepository, XpRepository
from wee5_xp.rules import XpConfig
from wee5_xp.service import XpService

log = get_logger("wee5.xp.tasks")
Scores = AsyncIterator[Sequence[Score]]
# Tries of one board in reconcile before it fails.
REBUILD_ATTEMPTS = 3


@dataclass
class ReconcileReport:
    members_repaired: int = 0
    periods_repaired: int = 0
    levels_repaired: int = 0
    boards_rebuilt: int = 0
    # Board entries (rank, user, xp) that Redis had wrong, missing or of no member in
    # Postgres before the rebuild.
    board_drift: int = 0
    drifted_boards: list[str] = field(default_factory=list)
    # Seconds each board's rebuild took, by board key (the same path a missing board takes:
    # built beside the live one, which is read meanwhile, and swapped in).
    board_seconds: dict[str, float] = field(default_factory=dict)


async def reconcile(service: XpService) -> ReconcileReport:
    report = ReconcileReport()
    async with service.transaction() as session:
        await lock_for_transaction(session, xp_lock("reconcile"))
        repo = MaintenanceRepository(session)
        report.members_repaired = len(await repo.repair_member_totals())
        report.periods_repaired = await repo.repair_period_xp()
        communities = await repo.communities()
        for community_id in communities:
            service.configs.invalidate(community_id)
            config = await service.config_of(session, community_id)
            report.levels_repaired += await service.recompute_levels(session, community_id, config)
    # Sorted: a community only Redis knows may come in any order from the scan.
    boards = sorted(set(communities) | await service.leaderboards.communities())
    with progress("reconcile: communities' boards rebuilt", len(boards)) as advance:
        for community_id in boards:
            await _rebuild_boards(service, community_id, report)
            advance(1)
    async with service.sessionmaker() as session:
        companies = await CompanyBoardRepository(session).companies_on_boards()
    # A company whose last community opted out keeps its boards in Redis until rebuilt empty.
    for company_id in sorted(set(companies) | await service.leaderboards.companies()):
        await _rebuild_company_boards(service, company_id, report)
    log.info("reconcile finished", **asdict(report))
    return report


async def _rebuild_boards(service: XpService, community_id: str, report: ReconcileReport) -> None:
    boards = service.leaderboards
    async with service.sessionmaker() as session:
        repo = XpRepository(session)
        config = await service.config_of(session, community_id)
        today = local_day(datetime.now(UTC), config.zone)
        wanted = {(period, period_start(period, today)) for period in PERIODS}
        # Past periods recent enough for Redis to hold them, and any it still holds.
        since = {period: today - PERIOD_TTL[period] for period in PERIODS}
        wanted |= set(await repo.recent_periods(community_id, since))
        async for key in boards.redis.scan_iter(match=f"{boards.prefix(community_id)}:*"):
            parts = str(key).split(":")
            if parts[-1] != "ix" and parts[-2] in PERIODS:
                wanted.add((parts[-2], datetime.fromisoformat(parts[-1]).date()))
        targets: list[tuple[str, date | None]] = [("all", None), *sorted(wanted)]
        for period, start in targets:
            key = boards.board_key(community_id, period, start)

            def scores(period: str = period, start: date | None = start) -> Scores:
                return (
                    repo.all_time_scores(community_id)
                    if start is None
                    else repo.period_scores(community_id, period, start)
                )

            await _replace_board(service, key, period, scores, report)


async def _replace_board(
    service: XpService,
    key: str,
    period: str,
    scores: Callable[[], Scores],
    report: ReconcileReport,
) -> None:
    """Rebuilds one board from a fresh read of Postgres, begun again (up to REBUILD_ATTEMPTS
    times) when abandoned, and reports it."""
    for attempt in range(1, REBUILD_ATTEMPTS + 1):
        try:
            rebuilt = await service.leaderboards.replace(key, period, scores())
            break
        except RebuildAbandoned:
            # A member hid (the board was forgotten) or the lease lapsed mid-way: the
            # board is begun again from a fresh read.
            if attempt == REBUILD_ATTEMPTS:
                raise
            log.warning("board rebuild abandoned; beginning it again", key=key)
    log.info("board reconciled", **asdict(rebuilt))
    report.boards_rebuilt += 1
    report.board_seconds[key] = rebuilt.seconds
    if rebuilt.drift:
        report.board_drift += rebuilt.drift
        report.drifted_boards.append(key)


async def _rebuild_company_boards(
    service: XpService, company_id: str, report: ReconcileReport
) -> None:
    """A company's boards as for a community: all time, the current periods (UTC), recent
    ones with XP, and any Redis still holds."""
    boards = service.leaderboards
    async with service.sessionmaker() as session:
        repo = CompanyBoardRepository(session)
        today = company_today(datetime.now(UTC))
        wanted = {(period, period_start(period, today)) for period in PERIODS}
        since = {period: today - PERIOD_TTL[period] for period in PERIODS}
        wanted |= set(await repo.recent_periods(company_id, since))
        async for key in boards.redis.scan_iter(match=f"{boards.company_prefix(company_id)}:*"):
            parts = str(key).split(":")
            if parts[-1] != "ix" and parts[-2] in PERIODS:
                wanted.add((parts[-2], datetime.fromisoformat(parts[-1]).date()))
        targets: list[tuple[str, date | None]] = [("all", None), *sorted(wanted)]
        for period, start in targets:
            key = boards.company_key(company_id, period, start)

            def scores(period: str = period, start: date | None = start) -> Scores:
                return repo.all_scores(company_id, period, start)

            await _replace_board(service, key, period, scores, report)


async def close_streaks(service: XpService, now: datetime | None = None) -> int:
    """Ends streaks whose last active day is before yesterday in the community's time zone."""
    now = now or datetime.now(UTC)
    async with service.transaction() as session:
        await lock_for_transaction(session, xp_lock("close-streaks"))
        xp = XpRepository(session)
        configured = await xp.configured_communities()
        by_zone: dict[str, list[str]] = defaultdict(list)
        for community_id, stored in configured.items():
            by_zone[XpConfig.from_json(stored).timezone].append(community_id)
        closed = 0
        for zone, communities in by_zone.items():
            yesterday = local_day(now, ZoneInfo(zone)) - timedelta(days=1)
            closed += await xp.close_streaks(yesterday, only=communities)
        yesterday = local_day(now, service.defaults.zone) - timedelta(days=1)
        closed += await xp.close_streaks(yesterday, exclude=list(configured))
    log.info("streaks closed", closed=closed)
    return closed


def no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


async def reconcile_job(ctx: TaskContext, args: argparse.Namespace) -> int:
    await reconcile(ctx.service)
    return 0


async def close_streaks_job(ctx: TaskContext, args: argparse.Namespace) -> int:
    await close_streaks(ctx.service)
    return 0
