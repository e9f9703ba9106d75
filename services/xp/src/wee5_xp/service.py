"""The XP rules: what an activity earns, how it moves a member's level, what gets published.

Functions here work inside the caller's transaction and never commit (the servicer does).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_kit.events import Outbox, new_meta
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.errors import InvalidActivity, InvalidAnalyticsRequest, MemberNotFound
from wee5_xp.leaderboards import Leaderboards, Standing, period_starts
from wee5_xp.levels import DEFAULT_CURVE, LevelCurve, Progress
from wee5_xp.models import Member
from wee5_xp.repository import ACTIVITY_COUNTERS, DailyActivity, XpRepository

# Rows of this session's cooldown claims, released by the servicer if the transaction fails.
COOLDOWN_CLAIMS = "xp_cooldown_claims"
# Standings of this session's credits, mirrored into the leaderboards once it has committed.
STANDINGS = "xp_standings"
# Analytics cover these many UTC days (today included) unless asked otherwise, and never more
# than MAX_ANALYTICS_WINDOW at once.
DEFAULT_ANALYTICS_DAYS = 30
MAX_ANALYTICS_WINDOW = timedelta(days=366)


@dataclass(frozen=True)
class XpRates:
    """What each activity kind earns (a min–max range draws uniformly)."""

    message: tuple[int, int]
    post: tuple[int, int]
    reaction: tuple[int, int]
    cooldown_seconds: int
    min_message_length: int

    @classmethod
    def from_settings(cls, settings: XpSettings) -> XpRates:
        return cls(
            message=(settings.xp_message, settings.xp_message),
            post=(settings.xp_post_min, settings.xp_post_max),
            reaction=(settings.xp_reaction, settings.xp_reaction),
            cooldown_seconds=settings.xp_cooldown_seconds,
            min_message_length=settings.xp_min_message_length,
        )

    def draw(self, kind: str) -> int:
        low, high = getattr(self, kind, (0, 0))
        return random.randint(low, high)


@dataclass(frozen=True)
class ActivityInput:
    community_id: str
    user_id: str
    kind: str
    source: str
    idempotency_key: str
    custom_kind: str | None = None
    channel_id: str | None = None
    content_length: int = 0
    author_is_bot: bool = False
    occurred_at: datetime | None = None

    def validate(self) -> None:
        for name in ("community_id", "user_id", "idempotency_key"):
            value = getattr(self, name)
            if not value or len(value) > (200 if name == "idempotency_key" else 64):
                raise InvalidActivity(f"{name} is required and at most 64 characters")
        if self.kind not in ACTIVITY_COUNTERS:
            raise InvalidActivity("kind must be message, post, reaction or custom")
        if self.kind == "custom" and not self.custom_kind:
            raise InvalidActivity("a custom activity needs custom_kind")


@dataclass
class ActivityResult:
    outcome: str  # awarded | skipped | duplicate
    skip_reason: str | None = None
    xp_awarded: int = 0
    total_xp: int = 0
    level: int = 0
    leveled_up: bool = False
    standing: Standing | None = field(default=None, repr=False)


@dataclass(frozen=True)
class XpCredit:
    """XP credited to a member: one ledger entry and everything derived from it."""

    community_id: str
    user_id: str
    delta: int
    reason: str
    source: str
    # The activity kind whose counter this credit counts in (None for points and imports).
    counter_kind: str | None = None
    activity_id: int | None = None
    # Imported history counts all time only, not in today's/this week's/this month's boards.
    counts_in_periods: bool = True
    # False for imported history: levels reached elsewhere are not announced (no rewards).
    announces_level_up: bool = True


@dataclass(frozen=True)
class Credited:
    total_xp: int
    old_level: int
    level: int
    standing: Standing


def analytics_window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The [since, until) window of an analytics request: until defaults to now, since to the
    start of the UTC day DEFAULT_ANALYTICS_DAYS - 1 days before until's."""
    try:
        until = (until or now).astimezone(UTC)
        if since is None:
            start_of_day = datetime.combine(until.date(), datetime.min.time(), UTC)
            since = start_of_day - timedelta(days=DEFAULT_ANALYTICS_DAYS - 1)
        since = since.astimezone(UTC)
    except OverflowError:
        raise InvalidAnalyticsRequest("since and until must fall in the years 1 to 9999") from None
    if since >= until:
        raise InvalidAnalyticsRequest("since must be before until")
    if until - since > MAX_ANALYTICS_WINDOW:
        raise InvalidAnalyticsRequest(
            f"the window is at most {MAX_ANALYTICS_WINDOW.days} days; ask for it in parts"
        )
    return since, until


def _days(since: datetime, until: datetime) -> list[date]:
    """Every UTC day that [since, until) touches."""
    first = since.date()
    last = (until - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class RankCard:
    member: Member
    rank: int
    progress: Progress


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    user_id: str
    xp: int
    level: int


class XpService:
    def __init__(
        self,
        *,
        rates: XpRates,
        cooldowns: Cooldowns,
        leaderboards: Leaderboards,
        outbox: Outbox,
        curve: LevelCurve = DEFAULT_CURVE,
    ) -> None:
        self.rates = rates
        self.cooldowns = cooldowns
        self.leaderboards = leaderboards
        self.outbox = outbox
        self.curve = curve

    async def record_activity(
        self, session: AsyncSession, activity: ActivityInput
    ) -> ActivityResult:
        """Records the activity once per idempotency key and awards its XP unless a rule skips it."""
        activity.validate()
        repo = XpRepository(session)
        activity_id = await repo.insert_activity(
            community_id=activity.community_id,
            user_id=activity.user_id,
            kind=activity.kind,
            custom_kind=activity.custom_kind,
            source=activity.source,
            idempotency_key=activity.idempotency_key,
            channel_id=activity.channel_id,
            occurred_at=activity.occurred_at,
        )
        if activity_id is None:
            member = await repo.get_member(activity.community_id, activity.user_id)
            return ActivityResult(
                outcome="duplicate",
                total_xp=member.xp if member else 0,
                level=member.level if member else self.curve.first_level,
            )

        skip_reason = await self._skip_reason(session, activity)
        if skip_reason:
            await repo.settle_activity(activity_id, 0, skip_reason)
            member = await repo.get_member(activity.community_id, activity.user_id)
            return ActivityResult(
                outcome="skipped",
                skip_reason=skip_reason,
                total_xp=member.xp if member else 0,
                level=member.level if member else self.curve.first_level,
            )

        xp = self.rates.draw(activity.kind)
        credited = await self.credit(
            session,
            XpCredit(
                community_id=activity.community_id,
                user_id=activity.user_id,
                delta=xp,
                reason=activity.kind
                if activity.kind != "custom"
                else f"custom:{activity.custom_kind}",
                source=activity.source,
                counter_kind=activity.kind,
                activity_id=activity_id,
            ),
        )
        await repo.settle_activity(activity_id, xp, None)
        return ActivityResult(
            outcome="awarded",
            xp_awarded=xp,
            total_xp=credited.total_xp,
            level=credited.level,
            leveled_up=credited.level > credited.old_level,
            standing=credited.standing,
        )

    async def credit(self, session: AsyncSession, credit: XpCredit) -> Credited:
        """The one award path of every XP change (activities, points, imports): adds the delta
        to the member's totals, level and period XP, appends the ledger entry and queues
        `xp.awarded` (and `xp.level_up` when the level rose). The caller mirrors the returned
        standing into the leaderboards after its commit."""
        repo = XpRepository(session)
        total, old_level = await repo.add_xp(
            credit.community_id,
            credit.user_id,
            credit.delta,
            credit.counter_kind,
            self.curve.first_level,
        )
        level = self.curve.level_for(total)
        if level != old_level:
            await repo.set_level(credit.community_id, credit.user_id, level)
        await repo.append_ledger(
            community_id=credit.community_id,
            user_id=credit.user_id,
            delta=credit.delta,
            reason=credit.reason,
            source=credit.source,
            activity_id=credit.activity_id,
            balance_after=total,
        )
        period_xp = (
            await repo.add_period_xp(
                credit.community_id, credit.user_id, credit.delta, period_starts(datetime.now(UTC))
            )
            if credit.counts_in_periods
            else {}
        )
        await self._publish_award(session, credit, total, old_level, level)
        standing = Standing(credit.community_id, credit.user_id, total, period_xp)
        session.info.setdefault(STANDINGS, []).append(standing)
        return Credited(total_xp=total, old_level=old_level, level=level, standing=standing)

    async def _skip_reason(self, session: AsyncSession, activity: ActivityInput) -> str | None:
        if activity.author_is_bot:
            return "bot_author"
        if activity.kind == "message" and activity.content_length < self.rates.min_message_length:
            return "too_short"
        key = self.cooldowns.cooldown_key(activity.community_id, activity.user_id, activity.kind)
        if not await self.cooldowns.claim(key, self.rates.cooldown_seconds):
            return "cooldown"
        session.info.setdefault(COOLDOWN_CLAIMS, []).append(key)
        return None

    async def _publish_award(
        self, session: AsyncSession, credit: XpCredit, total: int, old: int, new: int
    ) -> None:
        await self.outbox.add(
            session,
            "xp.awarded",
            events_pb2.XpAwarded(
                meta=new_meta(credit.community_id),
                user_id=credit.user_id,
                delta=credit.delta,
                total_xp=total,
                level=new,
                reason=credit.reason,
            ),
        )
        if new > old and credit.announces_level_up:
            await self.outbox.add(
                session,
                "xp.level_up",
                events_pb2.LevelUp(
                    meta=new_meta(credit.community_id),
                    user_id=credit.user_id,
                    from_level=old,
                    to_level=new,
                    total_xp=total,
                ),
            )

    async def rank_card(self, session: AsyncSession, community_id: str, user_id: str) -> RankCard:
        repo = XpRepository(session)
        member = await repo.get_member(community_id, user_id)
        if member is None:
            raise MemberNotFound(community_id, user_id)
        key = await self._board(session, community_id, "all")
        placed = await self.leaderboards.rank(key, user_id)
        return RankCard(member, placed[0] if placed else 0, self.curve.progress(member.xp))

    async def leaderboard(
        self, session: AsyncSession, community_id: str, period: str, offset: int, limit: int
    ) -> list[LeaderboardRow]:
        key = await self._board(session, community_id, period)
        page = await self.leaderboards.page(key, offset, limit)
        levels = await XpRepository(session).levels_of(community_id, [user for user, _ in page])
        return [
            LeaderboardRow(offset + i + 1, user, xp, levels.get(user, self.curve.first_level))
            for i, (user, xp) in enumerate(page)
        ]

    async def leaderboard_entry(
        self, session: AsyncSession, community_id: str, period: str, user_id: str
    ) -> LeaderboardRow | None:
        key = await self._board(session, community_id, period)
        placed = await self.leaderboards.rank(key, user_id)
        if placed is None:
            return None
        levels = await XpRepository(session).levels_of(community_id, [user_id])
        return LeaderboardRow(
            placed[0], user_id, placed[1], levels.get(user_id, self.curve.first_level)
        )

    async def _board(self, session: AsyncSession, community_id: str, period: str) -> str:
        """The Redis key of the community's board for `period` (all, month, week, day) now."""
        repo = XpRepository(session)
        if period == "all":
            key = self.leaderboards.board_key(community_id, "all", None)
            await self.leaderboards.ensure(key, period, lambda: repo.all_time_scores(community_id))
            return key
        start = dict(period_starts(datetime.now(UTC)))[period]
        key = self.leaderboards.board_key(community_id, period, start)
        await self.leaderboards.ensure(
            key, period, lambda: repo.period_scores(community_id, period, start)
        )
        return key

    async def analytics(
        self,
        session: AsyncSession,
        community_id: str,
        since: datetime | None,
        until: datetime | None,
    ) -> list[DailyActivity]:
        """One entry per UTC day of the window, oldest first; days without activity are zeros."""
        if not community_id:
            raise InvalidAnalyticsRequest("community_id is required")
        since, until = analytics_window(since, until, datetime.now(UTC))
        rows = await XpRepository(session).daily_activity(community_id, since, until)
        found = {row.day: row for row in rows}
        return [found.get(day, DailyActivity(day, 0, 0, 0)) for day in _days(since, until)]
