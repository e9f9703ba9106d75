"""Tables of the `gateway` schema."""

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
    String,
    Text,
    UniqueConstraint,
    Uuid,
    column,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata

SCHEMA = "gateway"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class WebhookReceipt(Base):
    """One row per inbound webhook the gateway has acknowledged, keyed by the provider's own
    delivery id, so a redelivery is answered without doing the work again."""

    __tablename__ = "webhook_receipts"

    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(Text, primary_key=True)
    event_type: Mapped[str] = mapped_column(Text)
    # awarded | skipped | ignored | recorded | stale | rejected (authentic but unusable)
    outcome: Mapped[str] = mapped_column(Text)
    # Why a rejected delivery could not be used (shown to the community's admins).
    reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # The community (experience) the delivery was about, when it names one.
    community_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_webhook_receipts_community", "community_id"),)


class WhopExperience(Base):
    """A community learned from Whop: an experience of a company that installed the app."""

    __tablename__ = "whop_experiences"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text, default="")
    learned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_whop_experiences_company", "company_id"),)


class WhopCompanyOwner(Base):
    """The owner of a Whop company in WEE5: its first admin to open the app."""

    __tablename__ = "whop_company_owners"

    company_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    whop_user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    """An account: a person who signs in (owners, admins, members)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Stored lower-cased; unique.
    email: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text, default="")
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DiscordIdentity(Base):
    """An account that signs in with Discord: one per Discord user."""

    __tablename__ = "discord_identities"

    discord_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CommunityRole(Base):
    """What an account may do in one community, and who it is there (its member user id, e.g.
    a Whop `user_…` or a Discord id), so its own private data can be told apart."""

    __tablename__ = "community_roles"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # member | admin | owner
    role: Mapped[str] = mapped_column(String(16))
    # The account's user id inside the community; null until linked.
    member_user_id: Mapped[str | None] = mapped_column(String(64))
    granted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("role IN ('member', 'admin', 'owner')", name="role"),
        UniqueConstraint("community_id", "member_user_id"),
        Index("ix_community_roles_account", "account_id"),
    )


class RefreshToken(Base):
    """Opaque refresh tokens, stored hashed. Each use rotates it within its family; using a
    spent one again revokes the whole family (the token was stolen, or replayed)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who asked for this token, so the account's session list can tell its devices apart.
    user_agent: Mapped[str | None] = mapped_column(Text)
    client_ip: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"),)


class ApiKey(Base):
    """A key for servers and automation: one community, a set of scopes, stored hashed."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    community_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    # The first characters of the key, shown in listings so owners can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The key stops working at this time; NULL: until revoked.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_api_keys_community", "community_id"),)


AUDIT_PENDING = "pending"
AUDIT_DONE = "done"


class AuditEntry(Base):
    """Every admin/owner action: who, what, when, where, and the state before and after.

    A change made by another service is recorded `pending` (with its intent in `after`) before
    the gateway calls that service, and `done` (with the outcome) after it answered: a crash in
    between leaves a pending entry, never none."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str | None] = mapped_column(String(64))
    actor_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # A Whop user acting from Whop's iframe (their role comes from Whop), `user_…`.
    actor_whop_user_id: Mapped[str | None] = mapped_column(String(64))
    # A Discord user running a slash command (e.g. /give-xp) in the community's server.
    actor_discord_user_id: Mapped[str | None] = mapped_column(String(32))
    # e.g. "role.changed", "api_key.created", "plan.changed", "xp.adjusted"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # pending | done
    status: Mapped[str] = mapped_column(String(16), server_default=AUDIT_DONE)
    # The caller's idempotency key of the change, when it has one: a retry completes the
    # entry its first attempt left pending instead of adding another.
    idempotency_key: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_audit_log_community", "community_id", "id"),
        Index(
            "ix_audit_log_idempotency_key",
            "community_id",
            "action",
            "idempotency_key",
            postgresql_where=column("idempotency_key").is_not(None),
        ),
        CheckConstraint("status IN ('pending', 'done')", name="status"),
    )


BOARD_VISIBILITIES = ("public", "members", "admins")


class LeaderboardSettings(Base):
    """Who may read a community's leaderboard, and its members' XP histories; a community
    without a row: its members read the board, each member only their own history."""

    __tablename__ = "leaderboard_settings"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # public | members | admins
    visibility: Mapped[str] = mapped_column(String(16))
    # self_and_admins | members
    history_visibility: Mapped[str] = mapped_column(String(16), server_default="self_and_admins")
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("visibility IN ('public', 'members', 'admins')", name="visibility"),
        CheckConstraint(
            "history_visibility IN ('self_and_admins', 'members')", name="history_visibility"
        ),
    )


SHARED_PARTS_SQL = "part IN ('xp_config', 'reward_rules', 'badges')"


class CompanySharedTemplate(Base):
    """A part of a company's shared configuration (its template), as a company admin last
    set it: the body the apply route takes for that part."""

    __tablename__ = "company_shared_templates"

    company_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (CheckConstraint(SHARED_PARTS_SQL, name="part"),)


class CompanySharedFollower(Base):
    """A community following a part of its company's template: the part as the community
    held it right after the template was last applied to it (a difference later is the
    community's own change: it stops following)."""

    __tablename__ = "company_shared_followers"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[str] = mapped_column(String(16), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(64))
    applied: Mapped[Any] = mapped_column(JSONB)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(SHARED_PARTS_SQL, name="part"),
        Index("ix_company_shared_followers_company", "company_id", "part"),
    )
