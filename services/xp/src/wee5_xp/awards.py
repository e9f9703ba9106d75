"""What an award does to a member, without I/O: the inputs of the award path, and
`AwardBatch`, which moves members' totals, counters, level, streak and period XP and collects
the ledger rows, period deltas and events a batch of awards writes (`XpService.award_many`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from wee5.events.v1 import events_pb2
from wee5_kit.events import EventMessage, new_meta
from wee5_xp.errors import AdjustmentBelowZero, InvalidActivity
from wee5_xp.leaderboards import PERIODS, local_day, period_start
from wee5_xp.profiles import ProfileFields
from wee5_xp.repository import ACTIVITY_COUNTERS, LedgerRow, MemberState
from wee5_xp.rules import XpConfig

XP_AWARDED = "xp.awarded"
XP_LEVEL_UP = "xp.level_up"


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
    # What the source says about the member (name, username, avatar), if anything.
    profile: ProfileFields | None = None

    def validate(self) -> None:
        for name in ("community_id", "user_id", "idempotency_key"):
            value = getattr(self, name)
            if not value or len(value) > (200 if name == "idempotency_key" else 64):
                limit = 200 if name == "idempotency_key" else 64
                raise InvalidActivity(f"{name} is required and at most {limit} characters", name)
        if self.kind not in ACTIVITY_COUNTERS:
            raise InvalidActivity("kind must be message, post, reaction or custom", "kind")
        if self.kind == "custom" and not self.custom_kind:
            raise InvalidActivity("a custom activity needs custom_kind", "custom_kind")
        if self.custom_kind and len(self.custom_kind) > 64:
            raise InvalidActivity("custom_kind is at most 64 characters", "custom_kind")

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
    # The chat channel of the activity, passed on with a level-up (announced there).
    channel_id: str | None = None


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


def rule_skip(activity: ActivityInput, config: XpConfig) -> str | None:
    """Why the community's rules give this activity nothing (the cooldown aside)."""
    if activity.author_is_bot:
        return "bot_author"
    if activity.channel_id and activity.channel_id in config.no_xp_channels:
        return "no_xp_channel"
    if activity.kind == "message" and activity.content_length < config.min_message_length:
        return "too_short"
    return None


def count_activity(state: MemberState, counter: str, day: date, now: datetime) -> None:
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


def level_up_event(
    community_id: str,
    user_id: str,
    from_level: int,
    to_level: int,
    total_xp: int,
    channel_id: str | None = None,
) -> tuple[str, EventMessage]:
    """`xp.level_up`, for a level the member never reached before."""
    return (
        XP_LEVEL_UP,
        events_pb2.LevelUp(
            meta=new_meta(community_id),
            user_id=user_id,
            from_level=from_level,
            to_level=to_level,
            total_xp=total_xp,
            channel_id=channel_id or "",
        ),
    )


@dataclass
class AwardBatch:
    """The awards of one transaction, applied in order to the locked members' states."""

    now: datetime
    ledger: list[LedgerRow] = field(default_factory=list)
    # (community, user, period, start) -> (XP gained in it, reached at)
    periods: dict[tuple[str, str, str, date], tuple[int, datetime]] = field(default_factory=dict)
    events: list[tuple[str, EventMessage]] = field(default_factory=list)
    # Per time zone: `now`'s day there and the periods it falls in (worked out once a batch).
    _calendar: dict[tzinfo, tuple[date, list[tuple[str, date]]]] = field(
        default_factory=dict, repr=False
    )

    def apply(self, award: Award, config: XpConfig, state: MemberState) -> AwardResult:
        """Moves `state` by `award` and collects what to write for it."""
        day, periods = self._calendar_in(config.zone)
        before_xp, before_level, before_highest = state.xp, state.level, state.highest_level
        self._move_member(award, config, state, day)
        self._add_ledger_row(award, state, before_level, day)
        if award.delta != 0 and not award.imported:
            self._add_period_xp(award, state, periods)
        self._queue_events(award, state, before_level, before_highest)
        return AwardResult(False, state.xp, state.level, before_xp, before_level, award.delta)

    def _move_member(self, award: Award, config: XpConfig, state: MemberState, day: date) -> None:
        """Totals, counters, streak, reach time and level after the award."""
        before_xp = state.xp
        state.xp += award.delta
        if state.xp < 0:
            raise AdjustmentBelowZero(before_xp, award.delta)
        if award.kind is not None:
            count_activity(state, ACTIVITY_COUNTERS[award.kind], day, self.now)
        if award.delta != 0:
            # Ties on the boards go to who got there first: reach times only move forward.
            state.reached_at = max(self.now, state.reached_at + timedelta(microseconds=1))
        state.level = config.level_curve.level_for(state.xp)
        state.highest_level = max(state.highest_level, state.level)

    def _add_ledger_row(
        self, award: Award, state: MemberState, level_before: int, day: date
    ) -> None:
        self.ledger.append(
            LedgerRow(
                community_id=award.community_id,
                user_id=award.user_id,
                delta=award.delta,
                reason=award.reason[:200],
                source=award.source,
                activity_id=award.activity_id,
                balance_after=state.xp,
                level_before=level_before,
                level_after=state.level,
                day=day,
                actor=award.actor,
            )
        )

    def _calendar_in(self, zone: tzinfo) -> tuple[date, list[tuple[str, date]]]:
        if zone not in self._calendar:
            day = local_day(self.now, zone)
            self._calendar[zone] = (day, [(p, period_start(p, day)) for p in PERIODS])
        return self._calendar[zone]

    def _add_period_xp(
        self, award: Award, state: MemberState, periods: list[tuple[str, date]]
    ) -> None:
        for period, start in periods:
            slot = (award.community_id, award.user_id, period, start)
            total = self.periods.get(slot, (0, self.now))[0]
            self.periods[slot] = (total + award.delta, state.reached_at)

    def _queue_events(
        self, award: Award, state: MemberState, before_level: int, before_highest: int
    ) -> None:
        """`xp.awarded` for every award; `xp.level_up` for a level never reached before
        (imports raise levels silently: no retroactive level rewards)."""
        self.events.append(
            (
                XP_AWARDED,
                events_pb2.XpAwarded(
                    meta=new_meta(award.community_id),
                    user_id=award.user_id,
                    delta=award.delta,
                    total_xp=state.xp,
                    level=state.level,
                    reason=award.reason,
                ),
            )
        )
        if state.level > before_highest and not award.imported:
            self.events.append(
                level_up_event(
                    award.community_id,
                    award.user_id,
                    max(before_level, before_highest),
                    state.level,
                    state.xp,
                    award.channel_id,
                )
            )
