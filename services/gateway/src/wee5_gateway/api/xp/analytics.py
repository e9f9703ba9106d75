"""A community's analytics, as the JSON routes and the dashboard pages both read them: every
plan gets the basic metrics (the last 7 days' daily totals and three numbers); the analytics
feature (premium) unlocks the per-kind breakdown, the top movers and any window."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from wee5_gateway.api.xp import mappers
from wee5_gateway.api.xp.schemas import Analytics, BasicAnalytics, BasicDay, DailyActivity
from wee5_gateway.core.clients import Downstream

BASIC_DAYS = 7


def last_days(days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window of the last `days` UTC days, today included: [start of the first, now)."""
    now = now or datetime.now(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return start, now


async def full_analytics(
    downstream: Downstream,
    community_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Analytics:
    """Everything xp knows about the window (the caller checked the analytics feature)."""
    reply = await downstream.xp.GetAnalytics(mappers.analytics_request(community_id, since, until))
    return mappers.analytics(community_id, reply)


async def basic_analytics(downstream: Downstream, community_id: str) -> BasicAnalytics:
    """The last 7 days' daily totals and their three headline numbers (every plan)."""
    since, until = last_days(BASIC_DAYS)
    analytics = await full_analytics(downstream, community_id, since, until)
    return basic_of(analytics.days, community_id)


def basic_of(days: Sequence[DailyActivity], community_id: str) -> BasicAnalytics:
    """The basic metrics of the last 7 of `days`."""
    shown = list(days)[-BASIC_DAYS:]
    return BasicAnalytics(
        community_id=community_id,
        days=[
            BasicDay(
                day=day.day,
                active_members=day.active_members,
                xp=day.xp,
                new_members=day.new_members,
                level_ups=day.level_ups,
            )
            for day in shown
        ],
        xp=sum(day.xp for day in shown),
        new_members=sum(day.new_members for day in shown),
        level_ups=sum(day.level_ups for day in shown),
    )
