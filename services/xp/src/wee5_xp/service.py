"""The XP rules: what an activity earns, how an award moves a member's totals, level, periods
and streak, what gets published, and the reads (rank card, boards, history, analytics).

Every write goes through `XpService.award`, the one award entry point (activities, points,
adjustments). Functions here work inside the caller's transaction and never commit; the
transaction boundary is `XpService.transaction()`, which also mirrors committed totals into the
Redis boards and gives back cooldowns claimed by a transaction that failed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.events.v1 import events_pb2
from wee5_kit.events import EventMessage, Outbox, new_meta
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
from wee5_xp.repository import (
    ACTIVITY_COUNTERS,
    ActivityRow,
    DailyActivity,
    LedgerRow,
    MemberState,
    XpRepository,
)
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
    # Imported history (imports.py): counts all time only, not on period boards, and raises
    # the level without announcing it (no retroactive level rewards).
    imported: bool = False


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


def _rule_skip(activity: ActivityInput, config: XpConfig) -> str | None:
    """Why the community's rules give this activity nothing (the cooldown aside)."""
    if activity.author_is_bot:
        return "bot_author"
    if activity.channel_id and activity.channel_id in config.no_xp_channels:
        return "no_xp_channel"
    if activity.kind == "message" and activity.content_length < config.min_message_length:
        return "too_short"
    return None


def _count_activity(state: MemberState, counter: str, day: date, now: datetime) -> None:
    """One more activity of `counter`'s kind on `day`: the streak grows by a day when the
    previous active day was yesterday, restarts after a gap, and holds within a day."""
    state.counters[counter] += 1
    last = state.last_active_day
    if last is None or day > last:
        state.current_streak = state.current_streak + 1 if last == day - timedelta(days=1) else 1
        state.longest_streak = max(state.longest_streak, state.current_streak)
        state.last_active_day = day
    if state.last_activity_at is None or now > state.last_activity_at:
        state.last_activity_at = now


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
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.defaults = defaults
        self.cooldowns = cooldowns
        self.leaderboards = leaderboards
        self.outbox = outbox
        self.sessionmaker = sessionmaker
        self.configs = ConfigCache(config_cache_seconds)
        # What time it is (tests move it across day, week and month boundaries).
        self.clock = clock or (lambda: datetime.now(UTC))

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

    # --- awards ----------------------------------------------------------------------------

    async def award(
        self, session: AsyncSession, award: Award, config: XpConfig | None = None
    ) -> AwardResult:
        """One award through `award_many` (the entry point for points and adjustments)."""
        configs = {award.community_id: config} if config else None
        return (await self.award_many(session, [award], configs))[0]

    async def award_many(
        self,
        session: AsyncSession,
        awards: Sequence[Award],
        configs: dict[str, XpConfig] | None = None,
    ) -> list[AwardResult]:
        """THE award entry point. In the caller's transaction and in the order given: appends
        each award's ledger entry and moves the member's totals, counters, level, streak and
        period XP with it; queues `xp.awarded` for each (and `xp.level_up` for levels never
        reached before) in the outbox; queues the boards' update for after commit. An award
        with an idempotency key used before changes nothing (`duplicate`). A constant number
        of statements serves the whole batch."""
        configs = dict(configs or {})
        for community_id in {a.community_id for a in awards} - configs.keys():
            configs[community_id] = await self.config_of(session, community_id)
        repo = XpRepository(session)
        keyed = [(a.community_id, a.idempotency_key) for a in awards if a.idempotency_key]
        claimed = await repo.claim_award_keys(sorted(set(keyed)))
        live: list[Award | None] = []
        for a in awards:
            claim = (a.community_id, a.idempotency_key or "")
            if a.idempotency_key is None:
                live.append(a)
            elif claim in claimed:
                claimed.discard(claim)  # the same key twice in one batch: the first counts
                live.append(a)
            else:
                live.append(None)
        wanted = {
            (a.community_id, a.user_id, configs[a.community_id].level_curve.first_level)
            for a in live
            if a is not None
        }
        states = await repo.lock_members(sorted(wanted)) if wanted else {}
        now = self.clock()
        ledger: list[LedgerRow] = []
        periods: dict[tuple[str, str, str, date], tuple[int, datetime]] = {}
        events: list[tuple[str, EventMessage]] = []
        results: list[AwardResult | None] = []
        for maybe in live:
            if maybe is None:
                results.append(None)
                continue
            a = maybe
            config = configs[a.community_id]
            state = states[(a.community_id, a.user_id)]
            day = local_day(now, config.zone)
            before_xp, before_level, before_highest = state.xp, state.level, state.highest_level
            state.xp += a.delta
            if state.xp < 0:
                raise AdjustmentBelowZero(before_xp, a.delta)
            if a.kind is not None:
                _count_activity(state, ACTIVITY_COUNTERS[a.kind], day, now)
            if a.delta != 0:
                # Ties on the boards go to who got there first: reach times only move forward.
                state.reached_at = max(now, state.reached_at + timedelta(microseconds=1))
            state.level = config.level_curve.level_for(state.xp)
            state.highest_level = max(before_highest, state.level)
            ledger.append(
                LedgerRow(
                    community_id=a.community_id,
                    user_id=a.user_id,
                    delta=a.delta,
                    reason=a.reason[:200],
                    source=a.source,
                    activity_id=a.activity_id,
                    balance_after=state.xp,
                    level_before=before_level,
                    level_after=state.level,
                    day=day,
                    actor=a.actor,
                )
            )
            if a.delta != 0 and not a.imported:
                for period in PERIODS:
                    slot = (a.community_id, a.user_id, period, period_start(period, day))
                    total = periods.get(slot, (0, now))[0]
                    periods[slot] = (total + a.delta, state.reached_at)
            meta = new_meta(a.community_id)
            events.append(
                (
                    "xp.awarded",
                    events_pb2.XpAwarded(
                        meta=meta,
                        user_id=a.user_id,
                        delta=a.delta,
                        total_xp=state.xp,
                        level=state.level,
                        reason=a.reason,
                    ),
                )
            )
            if state.level > before_highest and not a.imported:
                events.append(
                    (
                        "xp.level_up",
                        events_pb2.LevelUp(
                            meta=new_meta(a.community_id),
                            user_id=a.user_id,
                            from_level=max(before_level, before_highest),
                            to_level=state.level,
                            total_xp=state.xp,
                        ),
                    )
                )
            results.append(
                AwardResult(False, state.xp, state.level, before_xp, before_level, a.delta)
            )
        if states:
            await repo.save_members(states)
            await repo.append_ledger(ledger)
            period_totals = await repo.add_period_xp(periods)
            await self.outbox.add_many(session, events)
            standings = session.info.setdefault(STANDINGS, [])
            for (community_id, user_id), state in states.items():
                mine = {
                    (period, start): xp
                    for (c, u, period, start), xp in period_totals.items()
                    if c == community_id and u == user_id
                }
                standings.append(Standing(community_id, user_id, state.xp, state.reached_at, mine))
        missing = [
            (a.community_id, a.user_id) for a, r in zip(awards, results, strict=True) if r is None
        ]
        known = await repo.totals_of(sorted(set(missing)))
        final: list[AwardResult] = []
        for a, r in zip(awards, results, strict=True):
            if r is None:
                first = configs[a.community_id].level_curve.first_level
                xp, level = known.get((a.community_id, a.user_id), (0, first))
                r = AwardResult(True, xp, level, xp, level, 0)
            final.append(r)
        return final

    async def recompute_levels(
        self, session: AsyncSession, community_id: str, config: XpConfig
    ) -> int:
        """Every member's level under the community's curve. Nothing is re-granted:
        `xp.level_up` is published only for levels a member never reached before (from their
        highest level ever to the new one); a member whose level falls, or rises back to
        levels reached before, changes level silently."""
        repo = XpRepository(session)
        curve = config.level_curve
        changes = []
        events: list[tuple[str, EventMessage]] = []
        for member in await repo.member_levels(community_id):
            level = curve.level_for(member.xp)
            if level == member.level:
                continue
            changes.append((member.user_id, level, max(member.highest_level, level)))
            if level > member.highest_level:
                events.append(
                    (
                        "xp.level_up",
                        events_pb2.LevelUp(
                            meta=new_meta(community_id),
                            user_id=member.user_id,
                            from_level=member.highest_level,
                            to_level=level,
                            total_xp=member.xp,
                        ),
                    )
                )
        await repo.set_levels(community_id, changes)
        await self.outbox.add_many(session, events)
        return len(changes)

    async def record_activity(
        self, session: AsyncSession, activity: ActivityInput
    ) -> ActivityResult:
        return (await self.record_activities(session, [activity]))[0]

    async def record_activities(
        self, session: AsyncSession, activities: Sequence[ActivityInput]
    ) -> list[ActivityResult]:
        """Records each activity once per idempotency key and awards its XP unless a rule
        skips it, in the order given, with a constant number of statements for the batch."""
        configs: dict[str, XpConfig] = {}
        for activity in activities:
            activity.validate()
            if activity.community_id not in configs:
                configs[activity.community_id] = await self.config_of(
                    session, activity.community_id
                )
            config = configs[activity.community_id]
            if activity.kind == "custom" and activity.custom_kind not in config.custom_kinds:
                raise UnknownCustomKind(activity.custom_kind or "")
        repo = XpRepository(session)
        inserted = await repo.insert_activities(
            [
                ActivityRow(
                    a.community_id,
                    a.user_id,
                    a.kind,
                    a.custom_kind,
                    a.source,
                    a.idempotency_key,
                    a.channel_id,
                    a.occurred_at,
                )
                for a in activities
            ]
        )
        ids: list[int | None] = []
        for a in activities:
            # pop: the same key twice in one batch is a duplicate the second time.
            ids.append(inserted.pop((a.community_id, f"{a.source}\x00{a.idempotency_key}"), None))
        reasons: list[str | None] = [
            None if i is None else _rule_skip(a, configs[a.community_id])
            for a, i in zip(activities, ids, strict=True)
        ]
        await self._claim_cooldowns(session, activities, ids, reasons, configs)
        now = self.clock()
        awards: list[Award] = []
        xps: dict[int, int] = {}
        for a, i, reason in zip(activities, ids, reasons, strict=True):
            if i is None or reason is not None:
                continue
            config = configs[a.community_id]
            # Boosts apply when the activity happened (if the source says, never the future).
            xp = config.xp_for(a.kind, a.custom_kind, a.channel_id, min(a.occurred_at or now, now))
            xps[i] = xp
            awards.append(Award(a.community_id, a.user_id, xp, a.reason, a.source, None, i, a.kind))
        awarded = iter(await self.award_many(session, awards, configs))
        await repo.settle_activities(
            [(i, xps.get(i, 0), r) for i, r in zip(ids, reasons, strict=True) if i is not None]
        )
        others = sorted(
            {
                (a.community_id, a.user_id)
                for a, i, r in zip(activities, ids, reasons, strict=True)
                if i is None or r
            }
        )
        known = await repo.totals_of(others)
        results = []
        for a, i, reason in zip(activities, ids, reasons, strict=True):
            if i is not None and reason is None:
                result = next(awarded)
                results.append(
                    ActivityResult(
                        "awarded",
                        None,
                        result.delta,
                        result.total_xp,
                        result.level,
                        result.leveled_up,
                    )
                )
                continue
            first = configs[a.community_id].level_curve.first_level
            xp, level = known.get((a.community_id, a.user_id), (0, first))
            if i is None:
                results.append(ActivityResult("duplicate", None, 0, xp, level))
            else:
                results.append(ActivityResult("skipped", reason, 0, xp, level))
        return results

    async def _claim_cooldowns(
        self,
        session: AsyncSession,
        activities: Sequence[ActivityInput],
        ids: list[int | None],
        reasons: list[str | None],
        configs: dict[str, XpConfig],
    ) -> None:
        """Claims the cooldown of every new activity no rule skipped (one Redis round trip,
        in order); an activity whose cooldown runs is skipped as `cooldown`."""
        claims = []
        for n, (a, i, reason) in enumerate(zip(activities, ids, reasons, strict=True)):
            seconds = configs[a.community_id].cooldown_seconds
            if i is not None and reason is None and seconds > 0:
                key = self.cooldowns.cooldown_key(a.community_id, a.user_id, a.kind)
                claims.append((n, key, seconds))
        won = await self.cooldowns.claim_many([(key, seconds) for _, key, seconds in claims])
        held = session.info.setdefault(COOLDOWN_CLAIMS, [])
        for (n, key, _), ok in zip(claims, won, strict=True):
            if ok:
                held.append(key)
            else:
                reasons[n] = "cooldown"

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
        yesterday = local_day(self.clock(), config.zone) - timedelta(days=1)
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
        start = period_start(period, at or local_day(self.clock(), config.zone))
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
        since, until = analytics_window(since, until, self.clock())
        repo = XpRepository(session)
        rows = await repo.daily_activity(community_id, since, until)
        found = {row.day: row for row in rows}
        days = [found.get(day, DailyActivity(day, 0, 0, 0, {})) for day in _days(since, until)]
        movers = await repo.top_movers(community_id, since, until, TOP_MOVERS)
        return Analytics(days, movers)
