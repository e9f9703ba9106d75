"""Every SQL statement of the xp service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import Activity, LedgerEntry, Member, PeriodXp

# SQL expression language on the tables (not ORM DML) on the hot path: it skips ORM
# bookkeeping that the award path has no use for.
activities = cast(Table, Activity.__table__)
members = cast(Table, Member.__table__)
ledger = cast(Table, LedgerEntry.__table__)
period_xp = cast(Table, PeriodXp.__table__)

ACTIVITY_COUNTERS = {
    "message": "messages",
    "post": "posts",
    "reaction": "reactions",
    "custom": "custom",
}


@dataclass(frozen=True)
class DailyActivity:
    """One UTC day of a community: activities recorded, XP they earned, members who earned."""

    day: date
    activities: int
    xp: int
    active_members: int


class XpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_activity(self, **fields: object) -> int | None:
        """The new activity's id, or None when its idempotency key was seen before."""
        inserted: int | None = await self.session.scalar(
            insert(activities)
            .values(xp_awarded=0, **fields)
            .on_conflict_do_nothing(
                index_elements=[
                    activities.c.community_id,
                    activities.c.source,
                    activities.c.idempotency_key,
                ]
            )
            .returning(activities.c.id)
        )
        return inserted

    async def find_activity(self, community_id: str, source: str, key: str) -> Activity | None:
        activity: Activity | None = await self.session.scalar(
            select(Activity).where(
                Activity.community_id == community_id,
                Activity.source == source,
                Activity.idempotency_key == key,
            )
        )
        return activity

    async def settle_activity(self, activity_id: int, xp: int, skip_reason: str | None) -> None:
        await self.session.execute(
            update(activities)
            .where(activities.c.id == activity_id)
            .values(xp_awarded=xp, skip_reason=skip_reason)
        )

    async def add_xp(
        self, community_id: str, user_id: str, delta: int, kind: str | None, first_level: int
    ) -> tuple[int, int]:
        """Adds XP and one activity of `kind` (none for points) to the member (created if new)
        in one statement, which also locks the row until the transaction ends: concurrent
        awards for a member queue up here. Returns (new total XP, level stored before)."""
        counter = ACTIVITY_COUNTERS[kind] if kind else None
        counted = {counter: members.c[counter] + 1} if counter else {}
        row = (
            await self.session.execute(
                insert(members)
                .values(
                    community_id=community_id,
                    user_id=user_id,
                    xp=delta,
                    level=first_level,
                    **{name: int(name == counter) for name in ACTIVITY_COUNTERS.values()},
                )
                .on_conflict_do_update(
                    index_elements=[members.c.community_id, members.c.user_id],
                    set_={
                        "xp": members.c.xp + delta,
                        **counted,
                        "updated_at": func.now(),
                    },
                )
                .returning(members.c.xp, members.c.level)
            )
        ).one()
        return int(row.xp), int(row.level)

    async def set_level(self, community_id: str, user_id: str, level: int) -> None:
        await self.session.execute(
            update(members)
            .where(members.c.community_id == community_id, members.c.user_id == user_id)
            .values(level=level)
        )

    async def append_ledger(
        self,
        *,
        community_id: str,
        user_id: str,
        delta: int,
        reason: str,
        source: str,
        activity_id: int | None,
        balance_after: int,
    ) -> None:
        await self.session.execute(
            insert(ledger).values(
                community_id=community_id,
                user_id=user_id,
                delta=delta,
                reason=reason,
                source=source,
                activity_id=activity_id,
                balance_after=balance_after,
            )
        )

    async def add_period_xp(
        self, community_id: str, user_id: str, delta: int, periods: Sequence[tuple[str, date]]
    ) -> dict[tuple[str, date], int]:
        """Adds `delta` to each (period, start) of the member; returns the new period totals."""
        values = insert(period_xp).values(
            [
                {
                    "community_id": community_id,
                    "period": period,
                    "period_start": start,
                    "user_id": user_id,
                    "xp": delta,
                }
                for period, start in periods
            ]
        )
        statement = values.on_conflict_do_update(
            index_elements=[
                period_xp.c.community_id,
                period_xp.c.period,
                period_xp.c.period_start,
                period_xp.c.user_id,
            ],
            set_={"xp": period_xp.c.xp + values.excluded.xp},
        ).returning(period_xp.c.period, period_xp.c.period_start, period_xp.c.xp)
        rows = (await self.session.execute(statement)).all()
        return {(row.period, row.period_start): row.xp for row in rows}

    async def get_member(self, community_id: str, user_id: str) -> Member | None:
        member: Member | None = await self.session.get(Member, (community_id, user_id))
        return member

    async def levels_of(self, community_id: str, user_ids: Sequence[str]) -> dict[str, int]:
        rows = await self.session.execute(
            select(Member.user_id, Member.level).where(
                Member.community_id == community_id, Member.user_id.in_(user_ids)
            )
        )
        return {row.user_id: row.level for row in rows}

    async def all_time_scores(self, community_id: str) -> list[tuple[str, int]]:
        rows = await self.session.execute(
            select(Member.user_id, Member.xp).where(
                Member.community_id == community_id, Member.xp > 0
            )
        )
        return [(row.user_id, row.xp) for row in rows]

    async def period_scores(
        self, community_id: str, period: str, start: date
    ) -> list[tuple[str, int]]:
        rows = await self.session.execute(
            select(PeriodXp.user_id, PeriodXp.xp).where(
                PeriodXp.community_id == community_id,
                PeriodXp.period == period,
                PeriodXp.period_start == start,
                PeriodXp.xp > 0,
            )
        )
        return [(row.user_id, row.xp) for row in rows]

    async def daily_activity(
        self, community_id: str, since: datetime, until: datetime
    ) -> list[DailyActivity]:
        """Days in [since, until) with at least one activity, oldest first. Counted by when
        xp recorded each activity (the time its XP was awarded), bucketed by UTC day."""
        day = func.date_trunc("day", func.timezone("UTC", activities.c.recorded_at)).label("day")
        rows = await self.session.execute(
            select(
                day,
                func.count().label("activities"),
                func.coalesce(func.sum(activities.c.xp_awarded), 0).label("xp"),
                func.count(activities.c.user_id.distinct())
                .filter(activities.c.xp_awarded > 0)
                .label("active_members"),
            )
            .where(
                activities.c.community_id == community_id,
                activities.c.recorded_at >= since,
                activities.c.recorded_at < until,
            )
            .group_by(day)
            .order_by(day)
        )
        return [
            DailyActivity(row.day.date(), row.activities, int(row.xp), row.active_members)
            for row in rows
        ]
