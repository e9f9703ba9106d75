"""Request and response bodies of reward rules, rewards, badges, the level-up message and
announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

RewardKind = Literal["free_days", "discount_code", "badge", "role"]
RewardStatus = Literal[
    "pending", "applying", "granted", "failed", "dead", "waiting", "waiting_membership"
]
CriteriaKind = Literal["level", "xp", "activity_count", "streak", "rank", "manual"]
BadgePeriod = Literal["all_time", "daily", "weekly", "monthly"]
ActivityKind = Literal["", "message", "post", "reaction", "custom"]
# Discord ids are snowflakes: decimal digits.
Snowflake = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,20}$")]
Id = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,17}$")]


class DiscountBody(msgspec.Struct, forbid_unknown_fields=True):
    # percent: `percent_off` (1-100); flat: `amount_off_minor` (cents) in `currency`.
    type: Literal["percent", "flat"]
    percent_off: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    amount_off_minor: Annotated[int, msgspec.Meta(ge=1)] | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{3}$")] | None = None
    # Billing months the discount applies for.
    duration_months: Annotated[int, msgspec.Meta(ge=1, le=36)] = 1
    # The code expires this many days after it is granted; 0 = never.
    expires_in_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 0


class RewardRuleBody(msgspec.Struct, forbid_unknown_fields=True):
    """What reaching the level earns: set the field of the kind (`free_days`, `discount`,
    `badge_id` or `role_id`)."""

    kind: RewardKind
    free_days: Annotated[int, msgspec.Meta(ge=1, le=1095)] | None = None
    discount: DiscountBody | None = None
    badge_id: Id | None = None
    role_id: Snowflake | None = None
    enabled: bool = True


class DiscountView(msgspec.Struct):
    type: Literal["percent", "flat"]
    percent_off: int | None
    amount_off_minor: int | None
    currency: str | None
    duration_months: int
    expires_in_days: int | None
    # On a granted reward: the code and when it expires.
    code: str | None = None
    expires_at: datetime | None = None


class RewardRuleView(msgspec.Struct):
    # null for the default rules of a community that never changed its rules.
    id: str | None
    level: int
    kind: RewardKind
    free_days: int | None
    discount: DiscountView | None
    badge_id: str | None
    role_id: str | None
    enabled: bool


class RewardRuleList(msgspec.Struct):
    community_id: str
    rules: list[RewardRuleView]


class RewardRuleSaved(msgspec.Struct):
    rule: RewardRuleView
    created: bool


class BackfillBody(msgspec.Struct, forbid_unknown_fields=True):
    # One rule (its id); null = every enabled rule.
    rule_id: Id | None = None
    # Only count what would be granted.
    dry_run: bool = False


class BackfillResult(msgspec.Struct):
    created: int
    # Rewards members already had.
    skipped: int
    dry_run: bool


class RewardView(msgspec.Struct):
    id: str
    user_id: str
    level: int
    kind: RewardKind
    status: RewardStatus
    free_days: int | None
    discount: DiscountView | None
    badge_id: str | None
    role_id: str | None
    rule_id: str | None
    # Provider attempts so far, and the last error (why it waits, failed or died).
    attempts: int
    last_error: str | None
    membership_id: str | None
    created_at: datetime
    granted_at: datetime | None
    next_attempt_at: datetime | None


class RewardPage(msgspec.Struct):
    rewards: list[RewardView]
    # Pass back as `cursor` for older rewards; null on the last page.
    next_cursor: str | None


class RewardAttemptView(msgspec.Struct):
    number: int
    # granted | already_applied | applied | not_applied | failed | unknown | rejected;
    # null while in flight (or when the process died during it).
    outcome: str | None
    http_status: int | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class CriteriaBody(msgspec.Struct, forbid_unknown_fields=True):
    """How the badge is earned: level/xp/activity_count/streak reach `threshold`; rank is at
    most `threshold` in `period`; manual badges are only awarded by admins."""

    kind: CriteriaKind
    threshold: Annotated[int, msgspec.Meta(ge=0, le=10**12)] = 0
    activity_kind: ActivityKind = ""
    period: BadgePeriod = "all_time"


class BadgeBody(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    criteria: CriteriaBody
    description: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    image_url: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^(https?://.+)?$")] = ""
    # Discord role given with the badge.
    role_id: Snowflake | None = None


class CriteriaView(msgspec.Struct):
    kind: CriteriaKind
    threshold: int
    activity_kind: str
    period: BadgePeriod


class BadgeView(msgspec.Struct):
    id: str
    name: str
    description: str
    image_url: str
    criteria: CriteriaView
    role_id: str | None
    created_at: datetime
    updated_at: datetime


class BadgePage(msgspec.Struct):
    badges: list[BadgeView]
    next_cursor: str | None


class MemberBadgeView(msgspec.Struct):
    user_id: str
    badge: BadgeView
    awarded_at: datetime
    # The admin's account for manual awards; null when earned.
    awarded_by: str | None


class MemberBadgePage(msgspec.Struct):
    member_badges: list[MemberBadgeView]
    next_cursor: str | None


class BadgeAwarded(msgspec.Struct):
    member_badge: MemberBadgeView
    # False when the member already held it.
    newly_awarded: bool


class CardBadge(msgspec.Struct):
    """A badge as the member card shows it."""

    id: str
    name: str
    image_url: str
    awarded_at: datetime


class RewardSettingsBody(msgspec.Struct, forbid_unknown_fields=True):
    # Variables: those listed in `variables` ({member}, {level}, …). Empty = the default.
    level_up_template: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    # Read-only here: null or the bound guild (bind one through `…/discord-guild/install`).
    discord_guild_id: Snowflake | None = None
    # The Discord server's introductions channel: a member's first message there earns the
    # intro points once (the Discord bot). Null = none.
    discord_intro_channel_id: Snowflake | None = None
    # The bot's welcome when a member joins: a message in this channel (null: none) from
    # `discord_welcome_template` (empty: the default), and a DM from
    # `discord_welcome_dm_template` (empty: none). Variables: `welcome_variables`.
    discord_welcome_channel_id: Snowflake | None = None
    discord_welcome_template: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    discord_welcome_dm_template: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    # The subscription role: a role of the bound Discord server that members with an active
    # Whop membership of the community hold, taken when it ends. Null = none.
    discord_subscription_role_id: Snowflake | None = None


class RewardSettingsView(msgspec.Struct):
    community_id: str
    level_up_template: str
    discord_guild_id: str | None
    discord_intro_channel_id: str | None
    discord_welcome_channel_id: str | None
    discord_welcome_template: str
    discord_welcome_dm_template: str
    # The variables the template may use.
    variables: list[str]
    # The variables the welcome templates may use.
    welcome_variables: list[str]
    discord_subscription_role_id: str | None


# ahead: the level is not reached yet; reached: reached before this reward existed (an admin
# may backfill it); else the delivery state of the member's reward.
RewardStepState = Literal["ahead", "reached", RewardStatus]


class RewardStep(msgspec.Struct):
    """One reward on a member's way up: what reaching `level` earns and where it stands."""

    level: int
    kind: RewardKind
    state: RewardStepState
    # Levels still to climb; 0 once reached.
    levels_to_go: int
    free_days: int | None = None
    # The rule's terms; once granted, with the member's own code.
    discount: DiscountView | None = None
    badge_id: str | None = None
    role_id: str | None = None
    granted_at: datetime | None = None


class MemberRewardStanding(msgspec.Struct):
    community_id: str
    user_id: str
    level: int
    # Lowest level first.
    rewards: list[RewardStep]


AnnouncementTarget = Literal[
    "activity_channel", "whop_channel", "whop_push", "discord_channel", "discord_dm"
]
AnnouncementKind = Literal["level_up", "reward", "badge"]
# What a burst past the community's limit per minute collapsed into ("… and 1,980 more").
ListedAnnouncementKind = Literal["level_up", "reward", "badge", "summary"]
Template = Annotated[str, msgspec.Meta(max_length=1000)]


class AnnouncementSettingsBody(msgspec.Struct, forbid_unknown_fields=True):
    """Whether, where and how often the community announces; left out: the default."""

    enabled: bool = False
    # activity_channel: the Whop chat channel the activity happened in; whop_channel: one
    # fixed chat channel (`channel_id` chat_feed_…); whop_push: a push notification to the
    # member; discord_channel (`channel_id` a snowflake) and discord_dm: through the bot.
    target: AnnouncementTarget = "activity_channel"
    channel_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    level_ups: bool = True
    rewards: bool = True
    badges: bool = True
    # Level-ups to levels divisible by this are announced (1: every level)...
    every_levels: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    # ...and from this level on, every level (0: off).
    every_level_from: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    # Templates (premium to change); empty or left out: the default text.
    level_up_template: Template = ""
    reward_template: Template = ""
    badge_template: Template = ""


class AnnouncementSettingsView(msgspec.Struct):
    community_id: str
    enabled: bool
    target: AnnouncementTarget
    channel_id: str | None
    level_ups: bool
    rewards: bool
    badges: bool
    every_levels: int
    every_level_from: int
    level_up_template: str
    reward_template: str
    badge_template: str
    # The variables templates may use, in braces: {member}, {level}, …
    variables: list[str]


class AnnouncementPreviewBody(msgspec.Struct, forbid_unknown_fields=True):
    kind: AnnouncementKind
    # Left out: the community's template of that kind.
    template: Template = ""
    # Left out: the community's target (values are escaped for it).
    target: AnnouncementTarget | None = None


class AnnouncementPreview(msgspec.Struct):
    text: str


# collapsed: past the community's limit per minute, counted in that minute's summary.
AnnouncementStatus = Literal["pending", "sending", "sent", "failed", "dead", "waiting", "collapsed"]


class AnnouncementView(msgspec.Struct):
    id: int
    # Empty for a summary.
    user_id: str
    kind: ListedAnnouncementKind
    # What it announces: "level_up:5", "reward:<id>", "badge:<id>".
    event_key: str
    target: AnnouncementTarget
    channel_id: str | None
    # The text as sent; null until the first attempt.
    text: str | None
    status: AnnouncementStatus
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    # Outcomes: sent | already_sent | not_sent | failed | unknown | rejected.
    attempts: list[RewardAttemptView]


class AnnouncementPage(msgspec.Struct):
    announcements: list[AnnouncementView]
    next_cursor: str | None
