"""Tables of the `xp` schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "xp"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class Member(Base):
    """A member of a community: the read model of the ledger (totals always equal its sum)."""

    __tablename__ = "members"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    xp: Mapped[int] = mapped_column(BigInteger, default=0)
    level: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(BigInteger, default=0)
    posts: Mapped[int] = mapped_column(BigInteger, default=0)
    reactions: Mapped[int] = mapped_column(BigInteger, default=0)
    custom: Mapped[int] = mapped_column(BigInteger, default=0)
    # The highest level ever reached: xp.level_up only announces levels above it, so a level
    # lost (adjustment, curve change) and regained never grants its rewards twice.
    highest_level: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # When the member reached their current XP: ties on the boards go to who got there first.
    reached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Consecutive active days in the community's time zone, ending at last_active_day.
    current_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    longest_streak: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_active_day: Mapped[date | None] = mapped_column(Date)
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The member hides themselves from the boards others read: they are kept out of the Redis
    # boards and the Postgres scores that (re)build them, so others' ranks close the gap.
    hidden_from_leaderboards: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index("ix_members_community_xp", "community_id", xp.desc()),
        # The few hidden members of a community, found without reading all the others (a
        # period board leaves them out on every load).
        Index(
            "ix_members_hidden",
            "community_id",
            "user_id",
            postgresql_where=text("hidden_from_leaderboards"),
        ),
    )


class Profile(Base):
    """How a Whop user appears on boards and cards (one per user, shared by every community),
    learned from webhook payloads and, for users none has named, Whop's users API. Null fields
    are unknown; a row whose fields are all null records a lookup that found nothing."""

    __tablename__ = "profiles"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(2000))
    # When the source said it (a webhook's message time): an older payload never replaces a
    # value a newer one gave.
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Activity(Base):
    """Every activity received, awarded or skipped; its idempotency key makes redelivery a no-op."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    custom_kind: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    xp_awarded: Mapped[int] = mapped_column(BigInteger, default=0)
    skip_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("community_id", "source", "idempotency_key"),
        Index("ix_activities_member", "community_id", "user_id", "id"),
    )


class LedgerEntry(Base):
    """Append-only: corrections are new entries, never updates."""

    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    activity_id: Mapped[int | None] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # The member's level before and after the entry (analytics count level-ups from these).
    level_before: Mapped[int | None] = mapped_column(Integer)
    level_after: Mapped[int | None] = mapped_column(Integer)
    # The community-local day the entry counts for: its week and month boards follow from it.
    day: Mapped[date | None] = mapped_column(Date)
    # Who made an admin adjustment (gateway account id); empty for everything else.
    actor: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_ledger_member", "community_id", "user_id", "id"),
        Index("ix_ledger_community_created", "community_id", "created_at"),
    )


class AwardKey(Base):
    """Idempotency keys of awards that are not activities (points, adjustments): the first
    award with a key writes the ledger, every later one is a duplicate."""

    __tablename__ = "award_keys"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class XpConfigRow(Base):
    """A community's XP configuration (rates, rules, curve, time zone) as validated JSON."""

    __tablename__ = "configs"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class PeriodXp(Base):
    """XP earned per member in each day, ISO week and month (UTC): the source of the
    time-windowed leaderboards that Redis serves."""

    __tablename__ = "period_xp"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    xp: Mapped[int] = mapped_column(BigInteger, default=0)
    reached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)


class Community(Base):
    """A community and the company it belongs to: a Whop company learned from webhook
    envelopes, or a WEE5 group from billing's events."""

    __tablename__ = "communities"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(64), index=True)
    # The community's XP counts on its company's board (opt-in: an admin of the community
    # turns it on; off, the company board leaves the community out).
    in_company_board: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The time of the latest WEE5 group change applied (billing's `billing.community_group`):
    # a community outside Whop has its group as company ('' once it left it).
    group_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Membership(Base):
    """A Whop user's membership in a company (from `membership.*` webhooks); it applies to the
    user's member record in every community of the company."""

    __tablename__ = "memberships"

    company_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    membership_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column()
    # Whop's time of the change; an older update never overwrites a newer one.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PointAward(Base):
    """One award of points per (community, idempotency key): a repeated key changes nothing.
    The points themselves are a ledger entry with the same reason."""

    __tablename__ = "point_awards"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportedXp(Base):
    """The XP (and message count) a member had in another bot when last imported; the member's
    `import` ledger entries of that source always add up to `xp`."""

    __tablename__ = "imported_xp"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    xp: Mapped[int] = mapped_column(BigInteger)
    message_count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Mee6Link(Base):
    """A community synced with a MEE6 guild's leaderboard every 15 minutes."""

    __tablename__ = "mee6_links"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    guild_id: Mapped[str] = mapped_column(String(32))
    # Null until the first sync has taken its snapshot (which gives no points).
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Mee6SyncedMember(Base):
    """Per member of a linked guild: MEE6 XP last seen and how much of it is already points.
    `xp_seen - xp_counted` is the remainder below one point, kept for the next sync."""

    __tablename__ = "mee6_synced_members"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    guild_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    xp_seen: Mapped[int] = mapped_column(BigInteger)
    xp_counted: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ForumSync(Base):
    """Where the Whop forum-post sync of a community stopped: the cursor after the last post
    it recorded (Whop's `page_info.end_cursor`)."""

    __tablename__ = "forum_syncs"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(500))
    posts_recorded: Mapped[int] = mapped_column(BigInteger, default=0)
    last_post_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
