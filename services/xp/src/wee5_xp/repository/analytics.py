"""SQL of a community's analytics: activity, XP, members and level-ups per UTC day; and of a
company's, across its communities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import Activity, Community, LedgerEntry, Member

activities = cast(Table, Activity.__table__)
members = cast(Table, Member.__table__)
ledger = cast(Table, LedgerEntry.__table__)
communities = cast(Table, Community.__table__)


@dataclass(frozen=True)
class DailyActivity:
    """One UTC day of a community."""

    day: date
    activities: int
    xp: int
    active_members: int
    by_kind: dict[str, int]
    new_members: int = 0
    level_ups: int = 0


class AnalyticsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def daily_activity(
        self, community_id: str, since: datetime, until: datetime
    ) -> list[DailyActivity]:
        """Days in [since, until) with anything in them, oldest first, by UTC day: activities
        per kind and members who earned (from activities), XP and level-ups (from the ledger),
        new members (by when xp first saw them)."""
        days: dict[date, dict[str, Any]] = {}

        def slot(day: datetime) -> dict[str, Any]:
            return days.setdefault(
                day.date(),
                {"activities": 0, "xp": 0, "active": 0, "kinds": {}, "new": 0, "ups": 0},
            )

        def utc_day(column: Any) -> Any:
            return func.date_trunc("day", func.timezone("UTC", column)).label("day")

        day = utc_day(activities.c.recorded_at)
        kind = func.coalesce(activities.c.custom_kind, activities.c.kind)
        for row in await self.session.execute(
            select(day, activities.c.kind, kind.label("name"), func.count().label("n"))
            .where(
                activities.c.community_id == community_id,
                activities.c.recorded_at >= since,
                activities.c.recorded_at < until,
            )
            .group_by(day, activities.c.kind, kind)
        ):
            entry = slot(row.day)
            entry["activities"] += row.n
            name = row.name if row.kind != "custom" else f"custom:{row.name}"
            entry["kinds"][name] = entry["kinds"].get(name, 0) + row.n
        for row in await self.session.execute(
            select(day, func.count(activities.c.user_id.distinct()).label("n"))
            .where(
                activities.c.community_id == community_id,
                activities.c.recorded_at >= since,
                activities.c.recorded_at < until,
                activities.c.skip_reason.is_(None),
            )
            .group_by(day)
        ):
            slot(row.day)["active"] = row.n
        day = utc_day(ledger.c.created_at)
        for row in await self.session.execute(
            select(
                day,
                func.coalesce(func.sum(ledger.c.delta), 0).label("xp"),
                func.count().filter(ledger.c.level_after > ledger.c.level_before).label("ups"),
            )
            .where(
                ledger.c.community_id == community_id,
                ledger.c.created_at >= since,
                ledger.c.created_at < until,
            )
            .group_by(day)
        ):
            entry = slot(row.day)
            entry["xp"], entry["ups"] = int(row.xp), row.ups
        day = utc_day(members.c.created_at)
        for row in await self.session.execute(
            select(day, func.count().label("n"))
            .where(
                members.c.community_id == community_id,
                members.c.created_at >= since,
                members.c.created_at < until,
            )
            .group_by(day)
        ):
            slot(row.day)["new"] = row.n
        return [
            DailyActivity(d, e["activities"], e["xp"], e["active"], e["kinds"], e["new"], e["ups"])
            for d, e in sorted(days.items())
        ]

    async def top_movers(
        self, community_id: str, since: datetime, until: datetime, limit: int
    ) -> list[tuple[str, int]]:
        """Members who gained the most XP in [since, until), most first (ties: user id)."""
        gained = func.sum(ledger.c.delta).label("gained")
        rows = await self.session.execute(
            select(ledger.c.user_id, gained)
            .where(
                and_(
                    ledger.c.community_id == community_id,
                    ledger.c.created_at >= since,
                    ledger.c.created_at < until,
                )
            )
            .group_by(ledger.c.user_id)
            .having(gained > 0)
            .order_by(gained.desc(), ledger.c.user_id)
            .limit(limit)
        )
        return [(row.user_id, int(row.gained)) for row in rows]

    async def company_communities(self, company_id: str) -> list[str]:
        """The communities xp has learned belong to `company_id`."""
        rows = await self.session.scalars(
            select(communities.c.community_id)
            .where(communities.c.company_id == company_id)
            .order_by(communities.c.community_id)
        )
        return list(rows)

    async def active_members(
        self, community_ids: list[str], since: datetime, until: datetime
    ) -> list[tuple[str, str]]:
        """(community, member) for each member who earned in each of `community_ids` in
        [since, until)."""
        rows = await self.session.execute(
            select(activities.c.community_id, activities.c.user_id)
            .where(
                activities.c.community_id.in_(community_ids),
                activities.c.recorded_at >= since,
                activities.c.recorded_at < until,
                activities.c.skip_reason.is_(None),
            )
            .distinct()
        )
        return [(row.community_id, row.user_id) for row in rows]

    async def movers_across(
        self, community_ids: list[str], since: datetime, until: datetime, limit: int
    ) -> list[tuple[str, int, int]]:
        """(member, XP gained, communities they gained it in) across `community_ids` in
        [since, until), most XP first (ties: user id)."""
        gained = func.sum(ledger.c.delta).label("gained")
        spread = func.count(ledger.c.community_id.distinct()).label("spread")
        rows = await self.session.execute(
            select(ledger.c.user_id, gained, spread)
            .where(
                ledger.c.community_id.in_(community_ids),
                ledger.c.created_at >= since,
                ledger.c.created_at < until,
            )
            .group_by(ledger.c.user_id)
            .having(gained > 0)
            .order_by(gained.desc(), ledger.c.user_id)
            .limit(limit)
        )
        return [(row.user_id, int(row.gained), int(row.spread)) for row in rows]
