"""The XP rules: what an activity earns, how an award moves a member's totals, level, periods
and streak, what gets published, and the reads (rank card, boards, history, analytics).

Every write goes through `XpService.award`, the one award entry point (activities, points,
adjustments). Functions here work inside the caller's transaction and never commit; the
transaction boundary is `XpService.transaction()`, which also mirrors committed totals into the
Redis boards and gives back cooldowns claimed by a transaction that failed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import Outbox, new_meta
from wee5_kit.logging import get_logger
from wee5_xp.config import XpSettings
from wee5_xp.cooldowns import Cooldowns
from wee5_xp.errors import (
    AdjustmentBelowZero,
    InvalidActivity,
    InvalidAdjustment,
    InvalidAnalyticsRequest,
    InvalidHistoryRequest,
    MemberNotFound,
    UnknownCustomKind,
)
from wee5_xp.leaderboards import (
    PERIODS,
    Leaderboards,
    Standing,
    local_day,
    period_start,
)
from wee5_xp.levels import Progress, preset
from wee5_xp.models import LedgerEntry, Member
from wee5_xp.repository import ACTIVITY_COUNTERS, DailyActivity, XpRepository
from wee5_xp.rules import XpConfig, XpRange

log = get_logger("wee5.xp")

# session.info keys: cooldowns claimed (released if the transaction fails), standings and
# callbacks to run once it committed.
COOLDOWN_CLAIMS = "xp_cooldown_claims"
STANDINGS = "xp_standings"
AFTER_COMMIT = "xp_after_commit"
# Analytics cover these many UTC days (today included) unless asked otherwise, and never more
# than MAX_ANALYTICS_WINDOW at once.
DEFAULT_ANALYTICS_DAYS = 30
MAX_ANALYTICS_WINDOW = timedelta(days=366)
TOP_MOVERS = 10
MAX_ADJUSTMENT = 10_000_000
MAX_HISTORY_PAGE = 100


def default_config(settings: XpSettings) -> XpConfig:
    """The rules of a community that has not configured its own (ARCHITECTURE.md §4)."""
    return XpConfig(
        rates={
            "message": XpRange(settings.xp_message, settings.xp_message),
            "post": XpRange(settings.xp_post_min, settings.xp_post_max),
            "reaction": XpRange(settings.xp_reaction, settings.xp_reaction),
        },
        cooldown_seconds=settings.xp_cooldown_seconds,
        min_message_length=settings.xp_min_message_length,
        curve=preset("default"),
        timezone=settings.xp_timezone,
    ).validate()


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
        if self.custom_kind and len(self.custom_kind) > 64:
            raise InvalidActivity("custom_kind is at most 64 characters")

    @property
    def reason(self) -> str:
        return self.kind if self.kind != "custom" else f"custom:{self.custom_kind}"


@dataclass(frozen=True)
class Award:
    """A change of a member's XP: an activity's, points for an action, an admin adjustment."""

    community_id: str
    user_id: str
    delta: int
    # What the ledger says it was for: "message", "custom:intro", "benchmark_submitted", …
    reason: str
    # Where it came from: "whop", "api", "benchmarks", "admin", …
    source: str
    # Awards that are not activities need one; redelivery with it changes nothing.
    idempotency_key: str | None = None
    activity_id: int | None = None
    # The activity kind, for the member's counters and streak; None for non-activities.
    kind: str | None = None
    actor: str | None = None


@dataclass
class AwardResult:
    duplicate: bool
    total_xp: int
    level: int
    previous_xp: int = 0
    previous_level: int = 0
    delta: int = 0

    @property
    def leveled_up(self) -> bool:
        return self.level > self.previous_level


@dataclass
class ActivityResult:
    outcome: str  # awarded | skipped | duplicate
    skip_reason: str | None = None
    xp_awarded: int = 0
    total_xp: int = 0
    level: int = 0
    leveled_up: bool = False


@dataclass(frozen=True)
class PeriodRank:
    period: str
    start: date
    rank: int
    xp: int


@dataclass(frozen=True)
class RankCard:
    member: Member
    rank: int
    progress: Progress
    periods: list[PeriodRank]
    current_streak: int
    custom_totals: dict[str, int]


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    user_id: str
    xp: int
    level: int


@dataclass(frozen=True)
class Board:
    period: str
    start: date | None
    rows: list[LeaderboardRow]


@dataclass(frozen=True)
class ConfigChange:
    before: XpConfig
    after: XpConfig
    levels_changed: int


@dataclass(frozen=True)
class Analytics:
    days: list[DailyActivity]
    top_movers: list[tuple[str, int]] = field(default_factory=list)


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


class ConfigCache:
    """Communities' configs for `ttl` seconds: every replica sees a change within that."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, XpConfig]] = {}

    def get(self, community_id: str) -> XpConfig | None:
        entry = self._entries.get(community_id)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, community_id: str, config: XpConfig) -> None:
        if len(self._entries) > 50_000:
            self._entries.clear()
        self._entries[community_id] = (time.monotonic() + self.ttl, config)

    def invalidate(self, community_id: str) -> None:
        self._entries.pop(community_id, None)


class XpService:
    def __init__(
        self,
        *,
        defaults: XpConfig,
        cooldowns: Cooldowns,
        leaderboards: Leaderboards,
        outbox: Outbox,
        sessionmaker: async_sessionmaker[AsyncSession],
        config_cache_seconds: float = 5.0,
    ) -> None:
        self.defaults = defaults
        self.cooldowns = cooldowns
        self.leaderboards = leaderboards
        self.outbox = outbox
        self.sessionmaker = sessionmaker
        self.configs = ConfigCache(config_cache_seconds)

    # --- transaction boundary --------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One database transaction. After it commits, the awards made in it are mirrored into
        the Redis boards; if it fails, the cooldowns it claimed are given back."""
        session = self.sessionmaker()
        try:
            async with session.begin():
                yield session
            standings: list[Standing] = session.info.get(STANDINGS, [])
            callbacks: list[Callable[[], None]] = session.info.get(AFTER_COMMIT, [])
        except BaseException:
            await self.cooldowns.release(session.info.get(COOLDOWN_CLAIMS, []))
            raise
        finally:
            await session.close()
        for callback in callbacks:
            callback()
        await self.mirror(standings)

    async def mirror(self, standings: list[Standing]) -> None:
        if not standings:
            return
        try:
            await self.leaderboards.record(standings)
        except Exception:
            # Committed is committed: the boards are rebuilt from Postgres when missing, and
            # the reconcile task repairs any drift.
            log.exception("leaderboard update failed")

    # --- configuration ---------------------------------------------------------------------

    async def config_of(self, session: AsyncSession, community_id: str) -> XpConfig:
        cached = self.configs.get(community_id)
        if cached is not None:
            return cached
        stored = await XpRepository(session).get_config(community_id)
        config = XpConfig.from_json(stored) if stored else self.defaults
        self.configs.put(community_id, config)
        return config

    async def update_config(
        self, session: AsyncSession, community_id: str, config: XpConfig
    ) -> ConfigChange:
        """Replaces the community's config. A new level curve recomputes every member's level
        in the same transaction (XP and ledger unchanged); see `recompute_levels`."""
        if not community_id or len(community_id) > 64:
            raise InvalidActivity("community_id is required and at most 64 characters")
        config.validate()
        repo = XpRepository(session)
        stored = await repo.lock_config(community_id)
        before = XpConfig.from_json(stored) if stored else self.defaults
        await repo.save_config(community_id, config.to_json())
        changed = 0
        if before.curve != config.curve:
            changed = await self.recompute_levels(session, community_id, config)
        session.info.setdefault(AFTER_COMMIT, []).append(
            lambda: self.configs.invalidate(community_id)
        )
        self.configs.invalidate(community_id)
        return ConfigChange(before, config, changed)

    async def recompute_levels(
        self, session: AsyncSession, community_id: str, config: XpConfig
    ) -> int:
        """Every member's level under the new curve. Nothing is re-granted: `xp.level_up` is
        published only for levels a member never reached before (from their highest level
        ever to the new one); a member whose level falls, or rises back to levels reached
        before, changes level silently."""
        repo = XpRepository(session)
        curve = config.level_curve
        changes = []
        for member in await repo.member_levels(community_id):
            level = curve.level_for(member.xp)
            if level == member.level:
                continue
            highest = max(member.highest_level, level)
            changes.append((member.user_id, level, highest))
            if level > member.highest_level:
                await self._publish_level_up(
                    session, community_id, member.user_id, member.highest_level, level, member.xp
                )
        await repo.set_levels(community_id, changes)
        return len(changes)

    # --- awards ----------------------------------------------------------------------------

    async def award(
        self, session: AsyncSession, award: Award, config: XpConfig | None = None
    ) -> AwardResult:
        """THE award entry point: appends the ledger entry and moves the member's totals,
        counters, level, streak and period XP with it, queues `xp.awarded` (and `xp.level_up`
        for levels never reached before) in the outbox, and queues the boards' update for
        after commit. Idempotent on `award.idempotency_key` when one is given."""
        config = config or await self.config_of(session, award.community_id)
        curve = config.level_curve
        repo = XpRepository(session)
        if award.idempotency_key is not None and not await repo.claim_award_key(
            award.community_id, award.idempotency_key
        ):
            member = await repo.get_member(award.community_id, award.user_id)
            total = member.xp if member else 0
            level = member.level if member else curve.first_level
            return AwardResult(True, total, level, total, level, 0)
        now = datetime.now(UTC)
        day = local_day(now, config.zone)
        credited = await repo.credit_member(
            award.community_id,
            award.user_id,
            award.delta,
            first_level=curve.first_level,
            counter=ACTIVITY_COUNTERS[award.kind] if award.kind else None,
            active_day=day if award.kind else None,
            now=now,
        )
        if credited.xp < 0:
            raise AdjustmentBelowZero(credited.xp - award.delta, award.delta)
        level = curve.level_for(credited.xp)
        highest = max(credited.highest_level, level)
        if level != credited.level or highest != credited.highest_level:
            await repo.set_level(award.community_id, award.user_id, level, highest)
        await repo.append_ledger(
            community_id=award.community_id,
            user_id=award.user_id,
            delta=award.delta,
            reason=award.reason[:200],
            source=award.source,
            activity_id=award.activity_id,
            balance_after=credited.xp,
            level_before=credited.level,
            level_after=level,
            day=day,
            actor=award.actor,
        )
        period_xp: dict[tuple[str, date], int] = {}
        if award.delta != 0:
            period_xp = await repo.add_period_xp(
                award.community_id,
                award.user_id,
                award.delta,
                [(period, period_start(period, day)) for period in PERIODS],
                credited.reached_at,
            )
            session.info.setdefault(STANDINGS, []).append(
                Standing(
                    award.community_id,
                    award.user_id,
                    credited.xp,
                    credited.reached_at,
                    period_xp,
                )
            )
        await self.outbox.add(
            session,
            "xp.awarded",
            events_pb2.XpAwarded(
                meta=new_meta(award.community_id),
                user_id=award.user_id,
                delta=award.delta,
                total_xp=credited.xp,
                level=level,
                reason=award.reason,
            ),
        )
        if level > credited.highest_level:
            await self._publish_level_up(
                session,
                award.community_id,
                award.user_id,
                max(credited.level, credited.highest_level),
                level,
                credited.xp,
            )
        return AwardResult(
            False, credited.xp, level, credited.xp - award.delta, credited.level, award.delta
        )

    async def _publish_level_up(
        self,
        session: AsyncSession,
        community_id: str,
        user_id: str,
        from_level: int,
        to_level: int,
        total: int,
    ) -> None:
        await self.outbox.add(
            session,
            "xp.level_up",
            events_pb2.LevelUp(
                meta=new_meta(community_id),
                user_id=user_id,
                from_level=from_level,
                to_level=to_level,
                total_xp=total,
            ),
        )

    async def record_activity(
        self, session: AsyncSession, activity: ActivityInput
    ) -> ActivityResult:
        """Records the activity once per idempotency key and awards its XP unless a rule skips it."""
        activity.validate()
        config = await self.config_of(session, activity.community_id)
        if activity.kind == "custom" and activity.custom_kind not in config.custom_kinds:
            raise UnknownCustomKind(activity.custom_kind or "")
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
                level=member.level if member else config.level_curve.first_level,
            )
        skip_reason = await self._skip_reason(session, activity, config)
        if skip_reason:
            await repo.settle_activity(activity_id, 0, skip_reason)
            member = await repo.get_member(activity.community_id, activity.user_id)
            return ActivityResult(
                outcome="skipped",
                skip_reason=skip_reason,
                total_xp=member.xp if member else 0,
                level=member.level if member else config.level_curve.first_level,
            )
        now = datetime.now(UTC)
        # Boosts apply when the activity happened (if the source says, and not in the future).
        at = min(activity.occurred_at or now, now)
        xp = config.xp_for(activity.kind, activity.custom_kind, activity.channel_id, at)
        result = await self.award(
            session,
            Award(
                community_id=activity.community_id,
                user_id=activity.user_id,
                delta=xp,
                reason=activity.reason,
                source=activity.source,
                activity_id=activity_id,
                kind=activity.kind,
            ),
            config,
        )
        await repo.settle_activity(activity_id, xp, None)
        return ActivityResult(
            outcome="awarded",
            xp_awarded=xp,
            total_xp=result.total_xp,
            level=result.level,
            leveled_up=result.leveled_up,
        )

    async def _skip_reason(
        self, session: AsyncSession, activity: ActivityInput, config: XpConfig
    ) -> str | None:
        if activity.author_is_bot:
            return "bot_author"
        if activity.channel_id and activity.channel_id in config.no_xp_channels:
            return "no_xp_channel"
        if activity.kind == "message" and activity.content_length < config.min_message_length:
            return "too_short"
        key = self.cooldowns.cooldown_key(activity.community_id, activity.user_id, activity.kind)
        if not await self.cooldowns.claim(key, config.cooldown_seconds):
            return "cooldown"
        session.info.setdefault(COOLDOWN_CLAIMS, []).append(key)
        return None

    async def adjust_xp(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        user_id: str,
        delta: int,
        reason: str,
        actor: str,
        idempotency_key: str,
    ) -> AwardResult:
        """An admin's ± correction: a new ledger entry (the ledger is never edited). The level
        may go down; levels regained later are not announced again."""
        reason = reason.strip()
        if not community_id or not user_id or len(community_id) > 64 or len(user_id) > 64:
            raise InvalidAdjustment("community_id and user_id are required (at most 64 chars)")
        if delta == 0 or abs(delta) > MAX_ADJUSTMENT:
            raise InvalidAdjustment(f"delta must be non-zero and at most ±{MAX_ADJUSTMENT}")
        if not reason or len(reason) > 180:
            raise InvalidAdjustment("reason is required and at most 180 characters")
        if not idempotency_key or len(idempotency_key) > 150:
            raise InvalidAdjustment("idempotency_key is required and at most 150 characters")
        return await self.award(
            session,
            Award(
                community_id=community_id,
                user_id=user_id,
                delta=delta,
                reason=f"adjustment:{reason}",
                source="admin",
                idempotency_key=f"adjust:{idempotency_key}",
                actor=actor or None,
            ),
        )

    # --- reads -----------------------------------------------------------------------------

    async def rank_card(self, session: AsyncSession, community_id: str, user_id: str) -> RankCard:
        repo = XpRepository(session)
        member = await repo.get_member(community_id, user_id)
        if member is None:
            raise MemberNotFound(community_id, user_id)
        config = await self.config_of(session, community_id)
        board = await self._board(session, community_id, "all", None, config)
        placed = await self.leaderboards.rank(board[0], user_id)
        periods = []
        for period in PERIODS:
            key, start = await self._board(session, community_id, period, None, config)
            assert start is not None
            in_period = await self.leaderboards.rank(key, user_id)
            rank, xp = in_period or (0, 0)
            periods.append(PeriodRank(period, start, rank, xp))
        yesterday = local_day(datetime.now(UTC), config.zone) - timedelta(days=1)
        streak = member.current_streak
        if member.last_active_day is None or member.last_active_day < yesterday:
            streak = 0  # broken, even before the nightly close-streaks task records it
        return RankCard(
            member,
            placed[0] if placed else 0,
            config.level_curve.progress(member.xp),
            periods,
            streak,
            await repo.custom_totals(community_id, user_id) if member.custom else {},
        )

    async def leaderboard(
        self,
        session: AsyncSession,
        community_id: str,
        period: str,
        at: date | None,
        offset: int,
        limit: int,
    ) -> Board:
        """A page of the board of `period` containing the day `at` (default: now)."""
        config = await self.config_of(session, community_id)
        key, start = await self._board(session, community_id, period, at, config)
        page = await self.leaderboards.page(key, offset, limit)
        levels = await XpRepository(session).levels_of(community_id, [user for user, _ in page])
        first = config.level_curve.first_level
        rows = [
            LeaderboardRow(offset + i + 1, user, xp, levels.get(user, first))
            for i, (user, xp) in enumerate(page)
        ]
        return Board(period, start, rows)

    async def leaderboard_entry(
        self, session: AsyncSession, community_id: str, period: str, at: date | None, user_id: str
    ) -> LeaderboardRow | None:
        config = await self.config_of(session, community_id)
        key, _ = await self._board(session, community_id, period, at, config)
        placed = await self.leaderboards.rank(key, user_id)
        if placed is None:
            return None
        levels = await XpRepository(session).levels_of(community_id, [user_id])
        return LeaderboardRow(
            placed[0], user_id, placed[1], levels.get(user_id, config.level_curve.first_level)
        )

    async def _board(
        self,
        session: AsyncSession,
        community_id: str,
        period: str,
        at: date | None,
        config: XpConfig,
    ) -> tuple[str, date | None]:
        """The Redis key of the board (loaded from Postgres if Redis lost it) and its start."""
        repo = XpRepository(session)
        if period == "all":
            key = self.leaderboards.board_key(community_id, "all", None)
            await self.leaderboards.ensure(key, period, lambda: repo.all_time_scores(community_id))
            return key, None
        start = period_start(period, at or local_day(datetime.now(UTC), config.zone))
        key = self.leaderboards.board_key(community_id, period, start)
        await self.leaderboards.ensure(
            key, period, lambda: repo.period_scores(community_id, period, start)
        )
        return key, start

    async def history(
        self,
        session: AsyncSession,
        community_id: str,
        user_id: str,
        page_size: int,
        before_id: int | None,
    ) -> tuple[list[LedgerEntry], int | None]:
        """A page of the member's ledger, newest first, and the cursor of the next page."""
        if not 1 <= page_size <= MAX_HISTORY_PAGE:
            raise InvalidHistoryRequest(f"page_size must be between 1 and {MAX_HISTORY_PAGE}")
        repo = XpRepository(session)
        if await repo.get_member(community_id, user_id) is None:
            raise MemberNotFound(community_id, user_id)
        entries = await repo.history(community_id, user_id, before_id, page_size + 1)
        more = len(entries) > page_size
        entries = entries[:page_size]
        return entries, entries[-1].id if more else None

    async def analytics(
        self,
        session: AsyncSession,
        community_id: str,
        since: datetime | None,
        until: datetime | None,
    ) -> Analytics:
        """One entry per UTC day of the window, oldest first (days without activity are
        zeros), and the members who gained the most XP in it."""
        if not community_id:
            raise InvalidAnalyticsRequest("community_id is required")
        since, until = analytics_window(since, until, datetime.now(UTC))
        repo = XpRepository(session)
        rows = await repo.daily_activity(community_id, since, until)
        found = {row.day: row for row in rows}
        days = [found.get(day, DailyActivity(day, 0, 0, 0, {})) for day in _days(since, until)]
        movers = await repo.top_movers(community_id, since, until, TOP_MOVERS)
        return Analytics(days, movers)
