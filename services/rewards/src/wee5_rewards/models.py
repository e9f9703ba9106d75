"""Tables of the `rewards` schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "rewards"

REWARD_KINDS = ("free_days", "discount_code", "badge", "role")
# pending → applying → granted, or failed (retried) → dead. waiting: no Whop key (or Whop
# refused it); waiting_membership: xp knows no Whop membership of the member yet.
REWARD_STATUSES = (
    "pending",
    "applying",
    "granted",
    "failed",
    "dead",
    "waiting",
    "waiting_membership",
)
DISCOUNT_TYPES = ("percent", "flat")
BADGE_CRITERIA = ("level", "xp", "activity_count", "streak", "rank", "manual")
BADGE_PERIODS = ("all_time", "daily", "weekly", "monthly")
# pending → assigned (an add) or removed (a remove), or dead; waiting: no bot token, no guild,
# or a member who linked no Discord account yet.
ROLE_STATUSES = ("pending", "assigned", "removed", "dead", "waiting")
ROLE_ACTIONS = ("add", "remove")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class RewardSpecColumns:
    """What a reward gives: shared by a rule and the rewards it produced."""

    kind: Mapped[str] = mapped_column(String(32))
    free_days: Mapped[int | None] = mapped_column(Integer)
    discount_type: Mapped[str | None] = mapped_column(String(16))
    discount_percent: Mapped[int | None] = mapped_column(Integer)
    amount_off_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    duration_months: Mapped[int | None] = mapped_column(Integer)
    badge_id: Mapped[int | None] = mapped_column(BigInteger)
    role_id: Mapped[str | None] = mapped_column(String(32))


class RewardRule(RewardSpecColumns, Base):
    """A community's own rule: reaching `level` earns the reward. Communities without any
    stored rule (and never customised) use the defaults in service.py."""

    __tablename__ = "reward_rules"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    # Days a discount code stays redeemable after it is granted; None = no expiry.
    expires_in_days: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("community_id", "level"),
        CheckConstraint(_one_of("kind", REWARD_KINDS), name="kind"),
    )


class Reward(RewardSpecColumns, Base):
    """A reward a member earned by reaching a level, and the state of its delivery.

    The unique (community, member, level) key is what makes a reward exist exactly once, however
    often the level-up that earned it is delivered or replayed.
    """

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    rule_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_in_days: Mapped[int | None] = mapped_column(Integer)
    # The promo code (deterministic per reward, so a retry can look it up before creating it).
    code: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), server_default="pending")
    # Every provider attempt ever made; `budget_used` counts those since the last admin retry.
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    budget_used: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # A worker that claimed the reward holds it until then; a crashed worker's claim lapses.
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    membership_id: Mapped[str | None] = mapped_column(String(64))
    company_id: Mapped[str | None] = mapped_column(String(64))
    # What Whop returned: the promo code id, or the membership id for free days.
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "level"),
        CheckConstraint(_one_of("kind", REWARD_KINDS), name="kind"),
        CheckConstraint(_one_of("status", REWARD_STATUSES), name="status"),
        Index("ix_rewards_community", "community_id", "id"),
        # The worker's claim: due rewards in the states it delivers.
        Index(
            "ix_rewards_due",
            "next_attempt_at",
            postgresql_where="status IN ('pending', 'failed', 'waiting_membership')",
        ),
        Index("ix_rewards_leased", "lease_expires_at", postgresql_where="status = 'applying'"),
        # The rewards gauge of /metrics counts these by status (wee5_rewards.metrics).
        Index("ix_rewards_open_status", "status", postgresql_where="status <> 'granted'"),
    )


class RewardAttempt(Base):
    """One delivery attempt of a reward, written before the provider is called, so an attempt
    whose outcome never came back (timeout, crash) is visible to the next one."""

    __tablename__ = "reward_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    # granted | already_applied | failed | unknown | rejected; NULL while in flight.
    outcome: Mapped[str | None] = mapped_column(String(24))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # The membership's renewal_period_end before days were added: what "did it apply?" is
    # checked against when the outcome is unknown.
    before_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("reward_id", "number"),)


class Announcement(Base):
    """One announcement to send: at most one per (community, member, event, target), so a
    level-up delivered twice or overlapping announces once. Sent by the announcement worker
    (wee5_rewards.announcing) through the same claim-lease-attempt cycle as rewards."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # level_up | reward | badge
    # What is announced, unique per member and kind: "level_up:5", "reward:<id>", "badge:<id>".
    event_key: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(32))
    # Where: a Whop chat channel, the experience of a push, a Discord channel; NULL for a DM.
    channel_id: Mapped[str | None] = mapped_column(String(64))
    # The template's values known when it was created (level, old_level, reward, badge …).
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    template: Mapped[str] = mapped_column(Text)
    # The text as first sent: every retry sends the same.
    text: Mapped[str | None] = mapped_column(Text)
    # pending | sending | sent | failed | dead | waiting
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # Attempts since it was created or an admin retried it (dead once the budget is spent).
    budget_used: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "kind", "event_key", "target"),
        Index(
            "ix_announcements_due",
            "next_attempt_at",
            postgresql_where="status IN ('pending', 'failed', 'sending')",
        ),
        Index("ix_announcements_community_status", "community_id", "status", "id"),
        Index("ix_announcements_community_created", "community_id", "created_at"),
    )


class AnnouncementAttempt(Base):
    """One try to send an announcement, committed before the provider is called."""

    __tablename__ = "announcement_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    # sent | already_sent | failed | unknown | rejected; NULL while in flight.
    outcome: Mapped[str | None] = mapped_column(String(24))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("announcement_id", "number"),)


class InAppAnnouncement(Base):
    """What the app showed a member (a `rewards.announced` event): at most one per (community,
    member, kind, event), so a level-up delivered twice or overlapping shows once. Kept apart
    from `announcements`, which the worker sends and the burst limit counts."""

    __tablename__ = "in_app_announcements"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # level_up | reward | badge
    # As in `announcements`: "level_up:5", "reward:<id>", "badge:<id>".
    event_key: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("community_id", "user_id", "kind", "event_key"),)


class CommunitySettings(Base):
    """Per-community settings of this context."""

    __tablename__ = "community_settings"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Once a community changed its rules, its stored rules are the whole set (even if empty).
    rules_customized: Mapped[bool] = mapped_column(Boolean, server_default="false")
    level_up_template: Mapped[str | None] = mapped_column(Text)
    # The Discord guild roles are given in: bound only with proof (the bot's install flow by
    # someone who may manage that guild, or a platform admin), and to one community at most.
    discord_guild_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Who bound it: "install:<account>", "platform_admin:<account>", "legacy" (before proofs).
    discord_guild_bound_by: Mapped[str | None] = mapped_column(String(80))
    # The guild's introductions channel: a member's first message there earns the intro points
    # once (the Discord bot, services/discord, asks for it with GetDiscordGuild).
    discord_intro_channel_id: Mapped[str | None] = mapped_column(String(32))
    # The bot's welcome on a member joining the guild: a message in this channel (none when
    # null) and a DM (none when its template is null); templates of wee5_kit.templates.
    discord_welcome_channel_id: Mapped[str | None] = mapped_column(String(32))
    discord_welcome_template: Mapped[str | None] = mapped_column(Text)
    discord_welcome_dm_template: Mapped[str | None] = mapped_column(Text)
    # The subscription role: members with an active Whop membership hold it (a role of the
    # bound guild), and it is taken when the membership ends.
    discord_subscription_role_id: Mapped[str | None] = mapped_column(String(32))
    # Announcements (wee5_rewards.announcements): on or off, where, what, how often.
    announce: Mapped[bool] = mapped_column(Boolean, server_default="false")
    announce_target: Mapped[str] = mapped_column(String(32), server_default="activity_channel")
    announce_channel_id: Mapped[str | None] = mapped_column(String(64))
    announce_level_ups: Mapped[bool] = mapped_column(Boolean, server_default="true")
    announce_rewards: Mapped[bool] = mapped_column(Boolean, server_default="true")
    announce_badges: Mapped[bool] = mapped_column(Boolean, server_default="true")
    announce_every_levels: Mapped[int] = mapped_column(Integer, server_default="1")
    announce_every_level_from: Mapped[int] = mapped_column(Integer, server_default="0")
    reward_template: Mapped[str | None] = mapped_column(Text)
    badge_template: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Badge(Base):
    __tablename__ = "badges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, server_default="")
    image_url: Mapped[str] = mapped_column(Text, server_default="")
    criteria: Mapped[str] = mapped_column(String(24))
    threshold: Mapped[int] = mapped_column(BigInteger, server_default="0")
    activity_kind: Mapped[str | None] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(16), server_default="all_time")
    role_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("community_id", "name"),
        CheckConstraint(_one_of("criteria", BADGE_CRITERIA), name="criteria"),
        CheckConstraint(_one_of("period", BADGE_PERIODS), name="period"),
        Index("ix_badges_community", "community_id", "id"),
    )


class MemberBadge(Base):
    """A badge a member holds. One row per (badge, member) ever: a revoked badge keeps its row
    (with `revoked_at`), so automatic evaluation does not hand it straight back."""

    __tablename__ = "member_badges"

    badge_id: Mapped[int] = mapped_column(
        ForeignKey("badges.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64))
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    awarded_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_member_badges_member", "community_id", "user_id"),)


class RoleAssignment(Base):
    """A Discord role to give a member: an outbox of its own, delivered by the role worker so
    that the award path never waits on Discord."""

    __tablename__ = "role_assignments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    role_id: Mapped[str] = mapped_column(String(32))
    # "reward:<id>", "badge:<id>" or "subscription"
    source: Mapped[str] = mapped_column(String(48))
    # Give the role (add) or take it (remove): the latest the source stated, one row per
    # (community, member, role), so the last change is the one carried out.
    action: Mapped[str] = mapped_column(String(8), server_default="add")
    # When the source stated the action (a membership's update time); an older statement
    # never replaces a newer one. Null for rewards and badges (given once, never taken).
    action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "role_id"),
        CheckConstraint(_one_of("status", ROLE_STATUSES), name="status"),
        CheckConstraint(_one_of("action", ROLE_ACTIONS), name="action"),
        Index("ix_role_assignments_due", "next_attempt_at", postgresql_where="status = 'pending'"),
    )


class DiscordLink(Base):
    """A member's Discord account: their Whop user id and the Discord user id they proved
    with Discord's OAuth (identify) at the gateway. Roles of members known by their Whop id
    go to this Discord user."""

    __tablename__ = "discord_links"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    discord_user_id: Mapped[str] = mapped_column(String(32), unique=True)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
