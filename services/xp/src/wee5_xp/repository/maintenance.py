"""SQL of the reconcile and close-streaks tasks: the read model repaired from the ledger."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
WHERE l.day IS NOT NULL AND l.delta <> 0 AND l.reason <> 'import'  -- imports are all time only
GROUP BY l.community_id, p.period, p.period_start, l.user_id
"""


class MaintenanceRepository:
    """The set-based statements of the reconcile and close-streaks tasks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
              FROM truth t
             WHERE NOT EXISTS (SELECT 1 FROM xp.members m  -- a join, not an insert tried per member
                                WHERE m.community_id = t.community_id AND m.user_id = t.user_id)
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
