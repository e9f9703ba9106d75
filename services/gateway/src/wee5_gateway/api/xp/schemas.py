"""Request and response bodies of leaderboards and who may read them, rank cards, XP history, the XP rules, admin
adjustments, points, imports, the activity intake and analytics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from wee5_gateway.api.rewards.schemas import CardBadge

Period = Literal["all", "month", "week", "day"]
ShortId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.:-]*$")]
Xp = Annotated[int, msgspec.Meta(ge=0, le=1000)]
Multiplier = Annotated[float, msgspec.Meta(ge=0, le=10)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# Free text kept in Postgres (the ledger, the audit log): no control characters (Postgres
# refuses NUL in text and JSON).
_PLAIN = r"^[^\x00-\x1f\x7f]+$"
IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=_PLAIN)]
RankApproximate = Annotated[
    bool,
    msgspec.Meta(
        description="True when the rank was estimated instead of counted: while a board of "
        "100,000 members or more is rebuilt (`updating`), from the part rebuilt so far. Show it "
        "as approximate; board pages themselves are always exact."
    ),
]
Updating = Annotated[
    bool,
    msgspec.Meta(
        description="True while the board is being rebuilt (after a Redis restart, a flush, an "
        "import, a new period) or Redis is unavailable: the ranks were counted by Postgres "
        "instead, the same members in the same order. Show it as updating; it turns false "
        "once the rebuilt board is swapped in."
    ),
]


class LeaderboardEntry(msgspec.Struct):
    rank: int
    user_id: str
    xp: int
    level: int
    # How Whop shows the member; null while unknown.
    display_name: str | None = None
    username: str | None = None
    avatar_url: str | None = None
    # How far the member's total XP is into their level (0..1), as on their card.
    progress: float = 0.0
    rank_approximate: RankApproximate = False


class Leaderboard(msgspec.Struct):
    community_id: str
    period: str
    # First day of the period shown (community time zone); null for all time.
    period_start: date | None
    entries: list[LeaderboardEntry]
    # Pass back as `cursor` for the next page; null on the last page.
    next_cursor: str | None
    # The caller's own entry, when their account is linked to a member of this community
    # and they are on this board; null otherwise.
    me: LeaderboardEntry | None = None
    # Pass as `cursor` (with the same `limit`, without `search`) for the page holding the
    # caller's own entry; null when that is the first page or they are not on the board.
    me_cursor: str | None = None
    # The earliest day `at` may name (the period before the community's first XP); an `at`
    # before it, or after today, is a 400. Null for all time.
    earliest_day: date | None = None
    updating: Updating = False


BoardVisibility = Literal["public", "members", "admins"]


# self_and_admins: a member's XP history is read by that member and the admins (the
# default); members: by every member of the community.
HistoryVisibility = Literal["self_and_admins", "members"]
DEFAULT_HISTORY_VISIBILITY: HistoryVisibility = "self_and_admins"


class LeaderboardSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    # public: anyone, without signing in; members: the community's members (the default);
    # admins: its admins and owners only.
    visibility: BoardVisibility
    # Who reads a member's XP history (`GET …/members/{user_id}/history`); everyone who reads
    # the board sees the totals on it and on the cards.
    history_visibility: HistoryVisibility = DEFAULT_HISTORY_VISIBILITY


class LeaderboardSettings(msgspec.Struct):
    community_id: str
    visibility: BoardVisibility
    history_visibility: HistoryVisibility = DEFAULT_HISTORY_VISIBILITY


class ActivityTotals(msgspec.Struct):
    messages: int
    posts: int
    reactions: int
    custom: int


class PeriodStanding(msgspec.Struct):
    period_start: date
    rank: int
    xp: int


class MemberCard(msgspec.Struct):
    """What a rank card shows."""

    community_id: str
    user_id: str
    xp: int
    level: int
    # 1-based all-time rank; 0 while the member is not on the board.
    rank: int
    xp_into_level: int
    xp_for_next_level: int
    # xp_into_level / xp_for_next_level, 0..1.
    progress: float
    totals: ActivityTotals
    # Consecutive active days up to today or yesterday (community time zone); 0 once broken.
    streak_days: int
    badges: list[CardBadge]
    longest_streak_days: int = 0
    last_activity_at: datetime | None = None
    # Rank (0: not on the board) and XP in the current day, week and month.
    periods: dict[str, PeriodStanding] = msgspec.field(default_factory=dict)
    # Awarded activities per custom kind name.
    custom_totals: dict[str, int] = msgspec.field(default_factory=dict)
    # How Whop shows the member; null while unknown.
    display_name: str | None = None
    username: str | None = None
    avatar_url: str | None = None
    # The member hides themselves from the boards others see (their rank is still shown
    # to them, as if visible).
    hidden_from_leaderboards: bool = False
    updating: Updating = False
    rank_approximate: RankApproximate = False


class HistoryEntry(msgspec.Struct):
    id: int
    # XP added (negative for a correction).
    delta: int
    # "message", "custom:intro", "benchmark_submitted", "adjustment:<why>", …
    reason: str
    # "whop", "api", "discord", "admin", "benchmarks", …
    source: str
    balance_after: int
    level_after: int
    created_at: datetime


class History(msgspec.Struct):
    community_id: str
    user_id: str
    entries: list[HistoryEntry]
    # Pass back as `cursor` for older entries; null on the last page.
    next_cursor: str | None


class XpRange(msgspec.Struct, forbid_unknown_fields=True):
    """Fixed when min == max, else drawn uniformly from [min, max]."""

    min: Xp
    max: Xp


class Boost(msgspec.Struct, forbid_unknown_fields=True):
    """A timed multiplier, e.g. double XP this weekend: [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime
    multiplier: Multiplier
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""


class LevelCurve(msgspec.Struct, forbid_unknown_fields=True):
    """A preset (`default`: MEE6's 5n²+50n+100 from level 1; `mee6`: the same from level 0;
    `linear`; `cubic`), or `custom` with a shape and its coefficients, highest power first
    (linear a·n+b, quadratic a·n²+b·n+c, cubic a·n³+b·n²+c·n+d for the n-th step)."""

    preset: Literal["default", "mee6", "linear", "cubic", "custom"] = "default"
    shape: Literal["linear", "quadratic", "cubic"] | None = None
    coefficients: Annotated[list[int], msgspec.Meta(max_length=4)] = msgspec.field(
        default_factory=list
    )
    first_level: Literal[0, 1] = 1


MaxLevel = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class XpConfigIn(msgspec.Struct, forbid_unknown_fields=True):
    message: XpRange
    post: XpRange
    reaction: XpRange
    # XP of the kinds this community defines (activities with kind "custom" name one).
    custom_kinds: Annotated[dict[Name, XpRange], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=dict
    )
    cooldown_seconds: Annotated[int, msgspec.Meta(ge=0, le=604800)] = 60
    min_message_length: Annotated[int, msgspec.Meta(ge=0, le=4000)] = 0
    no_xp_channel_ids: Annotated[list[Name], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    channel_multipliers: Annotated[dict[Name, Multiplier], msgspec.Meta(max_length=500)] = (
        msgspec.field(default_factory=dict)
    )
    boosts: Annotated[list[Boost], msgspec.Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )
    curve: LevelCurve = msgspec.field(default_factory=LevelCurve)
    max_level: MaxLevel = 1000
    # IANA time zone of the community's days, weeks and months (boards, streaks).
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"


class XpConfigView(XpConfigIn, kw_only=True):
    community_id: str


class XpConfigChanged(XpConfigView, kw_only=True):
    # Members whose level the new curve changed (XP never changes with the curve).
    levels_changed: int = 0


class LevelPreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """A curve to preview, bounded as in XpConfigIn."""

    curve: LevelCurve = msgspec.field(default_factory=LevelCurve)
    max_level: MaxLevel = 1000


class LevelRow(msgspec.Struct):
    level: int
    # XP from the level before to this one; 0 for the curve's first level.
    xp_for_level: int
    # Total XP a member needs to reach this level.
    total_xp: int


class LevelPreview(msgspec.Struct):
    rows: list[LevelRow]
    # What is out of bounds, by field ("curve.coefficients", "max_level", …).
    errors: dict[str, str] = msgspec.field(default_factory=dict)


class XpAdjustmentIn(msgspec.Struct, forbid_unknown_fields=True):
    # XP to add; negative to take away (never below 0 in total).
    delta: Annotated[int, msgspec.Meta(ge=-10_000_000, le=10_000_000)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=180, pattern=_PLAIN)]
    # Sending the same key again changes nothing.
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=150, pattern=_PLAIN)]


class XpAdjusted(msgspec.Struct):
    community_id: str
    user_id: str
    xp: int
    level: int
    previous_xp: int
    previous_level: int
    # True when the idempotency key was used before: nothing changed this time.
    duplicate: bool


class PointsIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: ShortId
    # Why, e.g. "intro"; intro, benchmark_submitted, resource_downloaded and
    # subscription_renewed have configured amounts.
    reason: Reason
    # Sending the same key again changes nothing (`duplicate: true`).
    idempotency_key: IdempotencyKey
    # Omitted: the configured amount of the reason.
    points: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None


class PointsAwarded(msgspec.Struct):
    duplicate: bool
    total_xp: int
    level: int


class ImportedMemberIn(msgspec.Struct, forbid_unknown_fields=True):
    user_id: ShortId
    xp: Annotated[int, msgspec.Meta(ge=0, le=10**12)]
    message_count: Annotated[int, msgspec.Meta(ge=0)] = 0


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    # Where the numbers come from; re-imports compare with the last import of the same source.
    source: Literal["mee6", "discord", "whop", "api"]
    members: Annotated[list[ImportedMemberIn], msgspec.Meta(min_length=1, max_length=1000)]


class ImportDone(msgspec.Struct):
    # Members whose imported XP grew (0 when the same numbers were imported before).
    imported: int


class ActivityIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["message", "post", "reaction", "custom"]
    user_id: ShortId
    # The source's own event id; sending it again changes nothing.
    idempotency_key: IdempotencyKey
    custom_kind: ShortId | None = None
    channel_id: ShortId | None = None
    # Length of the message text (the text itself is never sent).
    content_length: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    author_is_bot: bool = False
    occurred_at: datetime | None = None


class ActivityRecorded(msgspec.Struct):
    # awarded | skipped (earned nothing; see skip_reason) | duplicate (key seen before)
    status: Literal["awarded", "skipped", "duplicate"]
    skip_reason: str | None
    xp_awarded: int
    total_xp: int
    level: int
    leveled_up: bool


# Activities one batch intake call may carry (xp's RecordActivities takes as many).
MAX_ACTIVITY_BATCH = 1000


class ActivityBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    # 1 to 1,000 activities, each as the single intake takes it, each with its own key.
    activities: Annotated[
        list[ActivityIn], msgspec.Meta(min_length=1, max_length=MAX_ACTIVITY_BATCH)
    ]


class ActivityBatchRecorded(msgspec.Struct):
    # One outcome per activity, in the order sent; a key repeated inside the batch (or sent
    # before) is `duplicate` and counts once.
    results: list[ActivityRecorded]


class DailyActivity(msgspec.Struct):
    # The UTC day.
    day: date
    # Activities recorded that day, including those that earned nothing (cooldown, …).
    activities: int
    xp: int
    # Members who earned XP that day.
    active_members: int
    # Activities per kind: "message", "post", "reaction", "custom:<name>".
    activities_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    # Members xp saw for the first time that day.
    new_members: int = 0
    # Ledger entries that day that raised a member's level.
    level_ups: int = 0


class Mover(msgspec.Struct):
    user_id: str
    # XP gained in the window.
    xp: int


class Analytics(msgspec.Struct):
    community_id: str
    # Every UTC day of the window, oldest first; days without activity are zeros.
    days: list[DailyActivity]
    # Members who gained the most XP in the window, most first (at most 10).
    top_movers: list[Mover] = msgspec.field(default_factory=list)


class BasicDay(msgspec.Struct):
    # The UTC day.
    day: date
    # Members who earned XP that day.
    active_members: int
    xp: int
    new_members: int
    level_ups: int


class BasicAnalytics(msgspec.Struct):
    """What every plan sees: the last 7 UTC days (today included) and three numbers for them."""

    community_id: str
    # The 7 days, oldest first; days without activity are zeros.
    days: list[BasicDay]
    # XP awarded, members seen for the first time and level-ups over those days.
    xp: int
    new_members: int
    level_ups: int


class MemberPrivacyIn(msgspec.Struct, forbid_unknown_fields=True):
    hidden_from_leaderboards: bool


class MemberPrivacy(msgspec.Struct):
    community_id: str
    user_id: str
    # True: absent from the boards others see; the member still sees their own card and entry.
    hidden_from_leaderboards: bool
