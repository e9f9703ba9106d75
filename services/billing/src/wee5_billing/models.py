"""Tables of the `billing` schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "billing"

# The plans a row may name; what each one unlocks is the plan table in plans.py.
PLAN_NAMES = ("free", "premium", "enterprise")
INTERVALS = ("monthly", "yearly")
# Stripe's subscription statuses, stored as Stripe spells them.
STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "paused",
    "canceled",
)

# Statuses of a subscription whose payment failed: paid features last until its grace ends.
PAST_DUE_STATUSES = ("past_due", "unpaid")
# Statuses that keep paid features without conditions.
PAID_STATUSES = ("trialing", "active")
# A subscription in one of these never comes back (Stripe makes a new one instead).
ENDED_STATUSES = ("canceled", "incomplete_expired")
# The status of a community without a Stripe subscription (on free, or on an assigned plan).
ACTIVE = "active"
# Who a subscription pays for: one community, or a company (all its communities).
COMMUNITY, COMPANY = "community", "company"
HOLDERS = (COMMUNITY, COMPANY)
# Where a company comes from: a Whop company (`biz_…`, learned through xp from Whop's webhook
# envelopes) or a WEE5 group (`grp_…`) an owner created for communities outside Whop.
COMPANY_KINDS = ("whop", "group")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class CommunityPlan(Base):
    """The plan a platform admin assigned to a community. No row: the community is on free.

    Until Stripe drives plans (the billing issue), this is the only source of a paid plan.
    """

    __tablename__ = "community_plans"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan: Mapped[str] = mapped_column(String(16))
    # The platform admin's account id, as the gateway passes it.
    assigned_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (CheckConstraint(_one_of("plan", PLAN_NAMES), name="plan"),)


class Customer(Base):
    """The Stripe customer of one owner account: every community it pays for bills to it."""

    __tablename__ = "customers"

    # The gateway account id of the owner.
    owner_account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Subscription(Base):
    """A community's or a company's Stripe subscription, as the newest Stripe data this
    service saw says.

    `community_id` is the id of what the subscription pays for: a community id, or, when
    `holder` is "company", a company id (`biz_…`, `grp_…`) whose communities it all covers.
    `stripe_version_at` is the Stripe time (an event's `created`, or when Stripe was read) of
    the data the row holds; older data never overwrites it.
    """

    __tablename__ = "subscriptions"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(16), default=COMMUNITY, server_default=COMMUNITY)
    # For a company's subscription: the community its owner checked out from (renewal points
    # go to the owner's member record there).
    owner_community_id: Mapped[str | None] = mapped_column(String(64))
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    # The paying owner's gateway account id and their member user id in the community (as
    # the checkout recorded them in the subscription's metadata; empty when unknown).
    owner_account_id: Mapped[str] = mapped_column(String(64))
    owner_user_id: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str] = mapped_column(String(16))
    interval: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    trial_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When it became past due, and until when it keeps its features.
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    grace_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the billing checks dropped it to free for being past due beyond its grace.
    lapsed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last renewal invoice announced as `billing.subscription.renewed`.
    last_renewal_invoice_id: Mapped[str | None] = mapped_column(String(255))
    # Stripe's `created` of the subscription: of two live subscriptions, the newer counts.
    subscription_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stripe_version_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint(_one_of("plan", PLAN_NAMES), name="plan"),
        CheckConstraint(_one_of("interval", INTERVALS), name="interval"),
        CheckConstraint(_one_of("status", STATUSES), name="status"),
        CheckConstraint(_one_of("holder", HOLDERS), name="holder"),
        Index("ix_subscriptions_past_due", "grace_until", postgresql_where="lapsed_at IS NULL"),
    )


class Company(Base):
    """A company: several communities under one owner, whose subscription covers them all."""

    __tablename__ = "companies"

    company_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text, default="")
    # A group's owner (gateway account id); empty for a Whop company (Whop says who owns it).
    owner_account_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint(_one_of("kind", COMPANY_KINDS), name="kind"),)


class CompanyCommunity(Base):
    """Which company a community belongs to (at most one)."""

    __tablename__ = "company_communities"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(64), index=True)
    # For a Whop company: when xp learned the link (its event's time); an older event never
    # moves the community back. NULL for a group.
    learned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class StripeEvent(Base):
    """Every Stripe event received, once: a redelivery finds its id here and changes nothing."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    # Stripe's `created` of the event.
    stripe_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    community_id: Mapped[str | None] = mapped_column(String(64))
    # applied | unchanged | stale (older than what the row holds) | ignored (not about a
    # subscription of ours); "received" only inside the transaction that handles it
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class SubscriptionChange(Base):
    """The history of each community's subscription: what changed, why and from where.

    This is billing's audit trail of changes nobody made through the gateway (Stripe events,
    the billing checks, reconciliation); the gateway's audit log holds what people did.
    """

    __tablename__ = "subscription_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    # stripe_event | billing_checks | reconciliation
    source: Mapped[str] = mapped_column(String(32))
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_subscription_changes_community", "community_id", "id"),)


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
