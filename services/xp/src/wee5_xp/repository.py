"""Every SQL statement of the xp service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import Activity, LedgerEntry, Member, PeriodXp

ACTIVITY_COUNTERS = {
    "message": "messages",
    "post": "posts",
    "reaction": "reactions",
    "custom": "custom",
}


@dataclass(frozen=True)
class NewActivity:
    community_id: str
    user_id: str
    kind: str
    custom_kind: str | None
    source: str
    idempotency_key: str
    channel_id: str | None
    occurred_at: object | None


class XpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_activity(self, activity: NewActivity) -> int | None:
        """The new activity's id, or None when its idempotency key was seen before."""
        inserted: int | None = await self.session.scalar(
            insert(Activity)
            .values(
                community_id=activity.community_id,
                user_id=activity.user_id,
                kind=activity.kind,
                custom_kind=activity.custom_kind,
                source=activity.source,
                idempotency_key=activity.idempotency_key,
                channel_id=activity.channel_id,
                occurred_at=activity.occurred_at,
                xp_awarded=0,
            )
            .on_conflict_do_nothing(
                index_elements=[Activity.community_id, Activity.source, Activity.idempotency_key]
            )
            .returning(Activity.id)
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
            update(Activity)
            .where(Activity.id == activity_id)
            .values(xp_awarded=xp, skip_reason=skip_reason)
        )

    async def lock_member(self, community_id: str, user_id: str, first_level: int) -> Member:
        """The member row, created if new, locked until the transaction ends so that
        concurrent awards for one member apply one after the other."""
        await self.session.execute(
            insert(Member)
            .values(
                community_id=community_id,
                user_id=user_id,
                xp=0,
                level=first_level,
                messages=0,
                posts=0,
                reactions=0,
                custom=0,
            )
            .on_conflict_do_nothing(index_elements=[Member.community_id, Member.user_id])
        )
        result = await self.session.execute(
            select(Member)
            .where(Member.community_id == community_id, Member.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one()

    async def apply_to_member(
        self, member: Member, delta: int, level: int, activity_kind: str | None
    ) -> None:
        values: dict[str, object] = {"xp": Member.xp + delta, "level": level}
        if activity_kind is not None:
            counter = ACTIVITY_COUNTERS[activity_kind]
            values[counter] = getattr(Member, counter) + 1
        await self.session.execute(
            update(Member)
            .where(Member.community_id == member.community_id, Member.user_id == member.user_id)
            .values(**values)
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
        self.session.add(
            LedgerEntry(
                community_id=community_id,
                user_id=user_id,
                delta=delta,
                reason=reason,
                source=source,
                activity_id=activity_id,
                balance_after=balance_after,
            )
        )
        await self.session.flush()

    async def add_period_xp(
        self, community_id: str, user_id: str, delta: int, periods: Sequence[tuple[str, date]]
    ) -> dict[tuple[str, date], int]:
        """Adds `delta` to each (period, start) of the member; returns the new period totals."""
        values = insert(PeriodXp).values(
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
                PeriodXp.community_id,
                PeriodXp.period,
                PeriodXp.period_start,
                PeriodXp.user_id,
            ],
            set_={"xp": PeriodXp.xp + values.excluded.xp},
        ).returning(PeriodXp.period, PeriodXp.period_start, PeriodXp.xp)
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
