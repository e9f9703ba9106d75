"""The 15-minute MEE6 sync: each linked guild's leaderboard growth becomes points, once.

Per member of a linked guild the sync keeps the MEE6 XP already turned into points
(`xp_counted`). A run gives `points_mee6_sync` points per whole `mee6_xp_per_point` XP gained
beyond it and moves it on by exactly the XP it converted, so the remainder waits for the next
run: nothing is lost and nothing counts twice. Each page commits with its members' state, so
a run that fails half-way resumes cleanly. The first run of a link takes a snapshot (no points
for XP earned before the link; import it with `import-mee6` first). A member whose MEE6 XP
went down (reset in MEE6) starts over from the new number. Two runs at once: the second skips
the links the first holds (advisory lock); the member rows are locked as well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.logging import get_logger
from wee5_xp.jobs import TaskContext
from wee5_xp.points import PointsAward, PointsService
from wee5_xp.repository import SyncStateRepository
from wee5_xp.syncs.mee6 import Mee6Player, valid_guild_id

log = get_logger("wee5.xp.mee6_sync")


@dataclass
class SyncReport:
    members: int = 0
    awarded_members: int = 0
    points: int = 0

    def add(self, other: SyncReport) -> None:
        self.members += other.members
        self.awarded_members += other.awarded_members
        self.points += other.points


class Mee6Sync:
    def __init__(self, points: PointsService, *, xp_per_step: int, points_per_step: int) -> None:
        if xp_per_step < 1:
            raise ValueError("mee6_xp_per_point must be at least 1")
        self.points = points
        self.xp_per_step = xp_per_step
        self.points_per_step = points_per_step

    async def apply_page(
        self,
        session: AsyncSession,
        community_id: str,
        guild_id: str,
        players: Sequence[Mee6Player],
        *,
        snapshot: bool,
    ) -> SyncReport:
        """Turns the growth of one leaderboard page into points, in the caller's transaction."""
        repo = SyncStateRepository(session)
        known = await repo.mee6_members(community_id, guild_id, [p.id for p in players])
        report = SyncReport(members=len(players))
        for player in players:
            row = known.get(player.id)
            if snapshot:
                counted = player.xp
            else:
                counted = row.xp_counted if row else 0
                if player.xp < counted:
                    counted = player.xp
                steps = (player.xp - counted) // self.xp_per_step
                if steps > 0 and self.points_per_step > 0:
                    counted += steps * self.xp_per_step
                    result = await self.points.award(
                        session,
                        PointsAward(
                            community_id=community_id,
                            user_id=player.id,
                            reason="mee6_sync",
                            # The MEE6 XP counted up to after this award: unique per award.
                            idempotency_key=f"mee6:{guild_id}:{player.id}:{counted}",
                            points=steps * self.points_per_step,
                            source="mee6",
                        ),
                    )
                    if not result.duplicate:
                        report.awarded_members += 1
                        report.points += result.points
            if row is None or (row.xp_seen, row.xp_counted) != (player.xp, counted):
                await repo.save_mee6_member(community_id, guild_id, player.id, player.xp, counted)
        return report


async def sync_link(ctx: TaskContext, sync: Mee6Sync, community_id: str) -> SyncReport:
    """Syncs one linked community; the caller holds its lock."""
    async with ctx.sessionmaker() as session:
        # Read under the lock: a run that just finished may have taken the snapshot.
        link = await SyncStateRepository(session).mee6_link(community_id)
    if link is None:
        return SyncReport()
    guild_id = link.guild_id
    snapshot = link.synced_at is None
    report = SyncReport()
    async with ctx.mee6_client() as client:
        async for players in client.pages(guild_id):
            async with ctx.service.transaction() as session:
                applied = await sync.apply_page(
                    session,
                    community_id=community_id,
                    guild_id=guild_id,
                    players=players,
                    snapshot=snapshot,
                )
            report.add(applied)
    async with ctx.sessionmaker.begin() as session:
        await SyncStateRepository(session).mark_mee6_synced(
            community_id, guild_id, datetime.now(UTC)
        )
    log.info(
        "mee6 guild synced",
        community_id=community_id,
        guild_id=guild_id,
        snapshot=snapshot,
        members=report.members,
        awarded_members=report.awarded_members,
        points=report.points,
    )
    return report


def mee6_sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--community", help="only this community (with --guild: link it first)")
    parser.add_argument("--guild", help="link --community to this MEE6 guild, then sync it")
    parser.add_argument("--unlink", action="store_true", help="unlink --community and stop")


async def mee6_sync(ctx: TaskContext, args: argparse.Namespace) -> int:
    """Syncs every linked community (or the one given); exits 1 if any link failed."""
    if (args.guild or args.unlink) and not args.community:
        print("--guild and --unlink need --community", file=sys.stderr)
        return 2
    if args.guild and not valid_guild_id(args.guild):
        print(f"--guild {args.guild!r} is not a Discord guild id", file=sys.stderr)
        return 2
    async with ctx.sessionmaker.begin() as session:
        repo = SyncStateRepository(session)
        if args.unlink:
            removed = await repo.unlink_mee6(args.community)
            print(f"community {args.community} " + ("unlinked" if removed else "was not linked"))
            return 0
        if args.guild:
            await repo.link_mee6(args.community, args.guild)
        links = await repo.mee6_links()
    if args.community:
        links = [link for link in links if link.community_id == args.community]
        if not links:
            print(f"community {args.community} is not linked to a MEE6 guild", file=sys.stderr)
            return 2
    sync = Mee6Sync(
        ctx.points,
        xp_per_step=ctx.settings.mee6_xp_per_point,
        points_per_step=ctx.points.amounts.mee6_sync,
    )
    failed = 0
    for link in links:
        async with ctx.exclusive("mee6-sync", link.community_id) as held:
            if not held:
                log.info("mee6 sync already running elsewhere", community_id=link.community_id)
                continue
            try:
                await sync_link(ctx, sync, link.community_id)
            except Exception:
                failed += 1
                log.exception("mee6 sync failed", community_id=link.community_id)
    print(f"mee6-sync: {len(links) - failed} of {len(links)} linked communities synced")
    return 1 if failed else 0
