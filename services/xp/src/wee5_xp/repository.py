"""Every SQL statement of the xp service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.leaderboards import Score
from wee5_xp.models import (
    Activity,
    AwardKey,
    LedgerEntry,
    Member,
    PeriodXp,
    XpConfigRow,
)

# SQL expression language on the tables (not ORM DML) on the hot path: it skips ORM
# bookkeeping that the award path has no use for.
activities = cast(Table, Activity.__table__)
members = cast(Table, Member.__table__)
ledger = cast(Table, LedgerEntry.__table__)
period_xp = cast(Table, PeriodXp.__table__)
award_keys = cast(Table, AwardKey.__table__)
configs = cast(Table, XpConfigRow.__table__)

ACTIVITY_COUNTERS = {
    "message": "messages",
    "post": "posts",
    "reaction": "reactions",
    "custom": "custom",
}


@dataclass(frozen=True)
class Credited:
    """A member right after a credit: new totals, and the level stored before it."""

    xp: int
    level: int
    highest_level: int
    reached_at: datetime


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


@dataclass(frozen=True)
class MemberLevel:
    user_id: str
    xp: int
    level: int
    highest_level: int


class XpRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- activities ------------------------------------------------------------------------

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

    async def settle_activity(self, activity_id: int, xp: int, skip_reason: str | None) -> None:
        await self.session.execute(
            update(activities)
            .where(activities.c.id == activity_id)
            .values(xp_awarded=xp, skip_reason=skip_reason)
        )

    async def claim_award_key(self, community_id: str, key: str) -> bool:
        """True for the first award with this key; a concurrent one waits for it, then False."""
        claimed = await self.session.scalar(
            insert(award_keys)
            .values(community_id=community_id, idempotency_key=key)
            .on_conflict_do_nothing()
            .returning(award_keys.c.idempotency_key)
        )
        return claimed is not None

    # --- members ---------------------------------------------------------------------------

    async def credit_member(
        self,
        community_id: str,
        user_id: str,
        delta: int,
        *,
        first_level: int,
        counter: str | None,
        active_day: date | None,
        now: datetime,
    ) -> Credited:
        """Adds XP (and one activity to `counter`, and the active day to the streak) to the
        member, created if new, in one statement that also locks the row until the transaction
        ends: concurrent awards for a member queue up here. Returns the new total with the
        level stored before this award."""
        counters = {name: int(name == counter) for name in ACTIVITY_COUNTERS.values()}
        values: dict[str, Any] = {
            "community_id": community_id,
            "user_id": user_id,
            "xp": delta,
            "level": first_level,
            "highest_level": first_level,
            "reached_at": func.clock_timestamp(),
            **counters,
        }
        changes: dict[str, Any] = {"xp": members.c.xp + delta, "updated_at": func.now()}
        if delta != 0:
            changes["reached_at"] = func.clock_timestamp()
        if counter is not None:
            changes[counter] = members.c[counter] + 1
        if active_day is not None:
            values |= {
                "current_streak": 1,
                "longest_streak": 1,
                "last_active_day": active_day,
                "last_activity_at": now,
            }
            streak = case(
                (members.c.last_active_day >= active_day, members.c.current_streak),
                (
                    members.c.last_active_day == active_day - timedelta(days=1),
                    members.c.current_streak + 1,
                ),
                else_=literal(1),
            )
            changes |= {
                "current_streak": streak,
                "longest_streak": func.greatest(members.c.longest_streak, streak),
                "last_active_day": func.greatest(members.c.last_active_day, active_day),
                "last_activity_at": func.greatest(members.c.last_activity_at, now),
            }
        row = (
            await self.session.execute(
                insert(members)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=[members.c.community_id, members.c.user_id], set_=changes
                )
                .returning(
                    members.c.xp, members.c.level, members.c.highest_level, members.c.reached_at
                )
            )
        ).one()
        return Credited(int(row.xp), int(row.level), int(row.highest_level), row.reached_at)

    async def set_level(self, community_id: str, user_id: str, level: int, highest: int) -> None:
        await self.session.execute(
            update(members)
            .where(members.c.community_id == community_id, members.c.user_id == user_id)
            .values(level=level, highest_level=highest)
        )

    async def set_levels(self, community_id: str, levels: Sequence[tuple[str, int, int]]) -> None:
        """(user_id, level, highest_level) for many members at once."""
        if not levels:
            return
        await self.session.execute(
            update(members)
            .where(
                members.c.community_id == community_id,
                members.c.user_id == bindparam("uid"),
            )
            .values(level=bindparam("lvl"), highest_level=bindparam("hi")),
            [{"uid": u, "lvl": lvl, "hi": hi} for u, lvl, hi in levels],
        )

    async def member_levels(self, community_id: str) -> list[MemberLevel]:
        rows = await self.session.execute(
            select(members.c.user_id, members.c.xp, members.c.level, members.c.highest_level)
            .where(members.c.community_id == community_id)
            .with_for_update()
        )
        return [MemberLevel(r.user_id, r.xp, r.level, r.highest_level) for r in rows]

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

    async def custom_totals(self, community_id: str, user_id: str) -> dict[str, int]:
        """Awarded activities of the member per custom kind name."""
        rows = await self.session.execute(
            select(activities.c.custom_kind, func.count().label("n"))
            .where(
                activities.c.community_id == community_id,
                activities.c.user_id == user_id,
                activities.c.kind == "custom",
                activities.c.skip_reason.is_(None),
            )
            .group_by(activities.c.custom_kind)
        )
        return {row.custom_kind: row.n for row in rows}

    async def close_streaks(
        self, yesterday: date, *, only: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> int:
        """Ends the streaks of members with no active day since before `yesterday`."""
        statement = (
            update(members)
            .where(members.c.current_streak > 0, members.c.last_active_day < yesterday)
            .values(current_streak=0)
        )
        if only:
            statement = statement.where(members.c.community_id.in_(only))
        if exclude:
            statement = statement.where(members.c.community_id.not_in(exclude))
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    # --- ledger and periods ----------------------------------------------------------------

    async def append_ledger(self, **fields: object) -> None:
        await self.session.execute(insert(ledger).values(**fields))

    async def add_period_xp(
        self,
        community_id: str,
        user_id: str,
        delta: int,
        periods: Sequence[tuple[str, date]],
        reached_at: datetime,
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
                    "reached_at": reached_at,
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
            set_={"xp": period_xp.c.xp + values.excluded.xp, "reached_at": reached_at},
        ).returning(period_xp.c.period, period_xp.c.period_start, period_xp.c.xp)
        rows = (await self.session.execute(statement)).all()
        return {(row.period, row.period_start): row.xp for row in rows}

    async def history(
        self, community_id: str, user_id: str, before_id: int | None, limit: int
    ) -> list[LedgerEntry]:
        query = select(LedgerEntry).where(
            LedgerEntry.community_id == community_id, LedgerEntry.user_id == user_id
        )
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        return list(await self.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)))

    async def all_time_scores(self, community_id: str) -> list[Score]:
        rows = await self.session.execute(
            select(members.c.user_id, members.c.xp, members.c.reached_at).where(
                members.c.community_id == community_id, members.c.xp > 0
            )
        )
        return [Score(row.user_id, row.xp, row.reached_at) for row in rows]

    async def period_scores(self, community_id: str, period: str, start: date) -> list[Score]:
        rows = await self.session.execute(
            select(period_xp.c.user_id, period_xp.c.xp, period_xp.c.reached_at).where(
                period_xp.c.community_id == community_id,
                period_xp.c.period == period,
                period_xp.c.period_start == start,
                period_xp.c.xp > 0,
            )
        )
        return [Score(row.user_id, row.xp, row.reached_at) for row in rows]

    # --- configuration ---------------------------------------------------------------------

    async def get_config(self, community_id: str) -> dict[str, Any] | None:
        stored: dict[str, Any] | None = await self.session.scalar(
            select(configs.c.config).where(configs.c.community_id == community_id)
        )
        return stored

    async def lock_config(self, community_id: str) -> dict[str, Any] | None:
        """The stored config, locked until the transaction ends (updates queue up)."""
        await self.session.execute(
            insert(configs).values(community_id=community_id, config={}).on_conflict_do_nothing()
        )
        stored: dict[str, Any] | None = await self.session.scalar(
            select(configs.c.config).where(configs.c.community_id == community_id).with_for_update()
        )
        return stored or None

    async def save_config(self, community_id: str, config: dict[str, Any]) -> None:
        await self.session.execute(
            update(configs)
            .where(configs.c.community_id == community_id)
            .values(config=config, updated_at=func.now())
        )

    async def configured_communities(self) -> dict[str, dict[str, Any]]:
        rows = await self.session.execute(select(configs.c.community_id, configs.c.config))
        return {row.community_id: row.config for row in rows if row.config}

    # --- analytics -------------------------------------------------------------------------

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


# The truth the read model must equal: per member, the ledger's sum and its awarded activities
# per kind; per member and period, the ledger's sum over the days of the period.
_LEDGER_TOTALS = """
SELECT community_id, user_id, sum(delta) AS xp,
       count(*) FILTER (WHERE activity_id IS NOT NULL AND reason = 'message') AS messages,
       count(*) FILTER (WHERE activity_id IS NOT NULL AND reason = 'post') AS posts,
       count(*) FILTER (WHERE activity_id IS NOT NULL AND reason = 'reaction') AS reactions,
       count(*) FILTER (WHERE activity_id IS NOT NULL AND reason LIKE 'custom:%') AS custom,
       max(created_at) AS reached_at
FROM xp.ledger GROUP BY community_id, user_id
"""
_LEDGER_PERIODS = """
SELECT l.community_id, p.period, p.period_start, l.user_id, sum(l.delta) AS xp,
       max(l.created_at) AS reached_at
FROM xp.ledger l
CROSS JOIN LATERAL (VALUES ('day', l.day),
                           ('week', date_trunc('week', l.day)::date),
                           ('month', date_trunc('month', l.day)::date)) AS p(period, period_start)
WHERE l.day IS NOT NULL AND l.delta <> 0
GROUP BY l.community_id, p.period, p.period_start, l.user_id
"""


class MaintenanceRepository:
    """The set-based statements of the reconcile and close-streaks tasks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def advisory_lock(self, name: str) -> None:
        """Held until the transaction ends: a second run of the same task waits for the first."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name}
        )

    async def repair_member_totals(self) -> list[tuple[str, str]]:
        """Sets every member's XP and counters to what the ledger says; returns who drifted."""
        drifted = await self.session.execute(
            text(f"""
            WITH truth AS ({_LEDGER_TOTALS})
            UPDATE xp.members m
               SET xp = t.xp, messages = t.messages, posts = t.posts,
                   reactions = t.reactions, custom = t.custom
              FROM truth t
             WHERE m.community_id = t.community_id AND m.user_id = t.user_id
               AND (m.xp, m.messages, m.posts, m.reactions, m.custom)
                   IS DISTINCT FROM (t.xp, t.messages, t.posts, t.reactions, t.custom)
            RETURNING m.community_id, m.user_id""")
        )
        result = [(row.community_id, row.user_id) for row in drifted]
        orphans = await self.session.execute(
            text("""
            UPDATE xp.members m SET xp = 0, messages = 0, posts = 0, reactions = 0, custom = 0
             WHERE (m.xp <> 0 OR m.messages <> 0 OR m.posts <> 0 OR m.reactions <> 0
                    OR m.custom <> 0)
               AND NOT EXISTS (SELECT 1 FROM xp.ledger l
                                WHERE l.community_id = m.community_id AND l.user_id = m.user_id)
            RETURNING m.community_id, m.user_id""")
        )
        result += [(row.community_id, row.user_id) for row in orphans]
        missing = await self.session.execute(
            text(f"""
            WITH truth AS ({_LEDGER_TOTALS})
            INSERT INTO xp.members (community_id, user_id, xp, level, highest_level, messages,
                                    posts, reactions, custom, reached_at)
            SELECT community_id, user_id, xp, 0, 0, messages, posts, reactions, custom,
                   reached_at
              FROM truth
            ON CONFLICT DO NOTHING
            RETURNING community_id, user_id""")
        )
        return result + [(row.community_id, row.user_id) for row in missing]

    async def repair_period_xp(self) -> int:
        """Sets every member's period XP to the ledger's sum over the period; returns how many
        rows drifted."""
        upserted = await self.session.execute(
            text(f"""
            WITH truth AS ({_LEDGER_PERIODS})
            INSERT INTO xp.period_xp AS px
                   (community_id, period, period_start, user_id, xp, reached_at)
            SELECT community_id, period, period_start, user_id, xp, reached_at FROM truth
            ON CONFLICT (community_id, period, period_start, user_id)
            DO UPDATE SET xp = excluded.xp WHERE px.xp IS DISTINCT FROM excluded.xp
            RETURNING 1""")
        )
        zeroed = await self.session.execute(
            text(f"""
            WITH truth AS ({_LEDGER_PERIODS})
            UPDATE xp.period_xp px SET xp = 0
             WHERE px.xp <> 0 AND NOT EXISTS (
                   SELECT 1 FROM truth t
                    WHERE t.community_id = px.community_id AND t.period = px.period
                      AND t.period_start = px.period_start AND t.user_id = px.user_id)
            RETURNING 1""")
        )
        return len(upserted.all()) + len(zeroed.all())

    async def communities(self) -> list[str]:
        rows = await self.session.scalars(text("SELECT DISTINCT community_id FROM xp.members"))
        return list(rows)
