"""Tables of the `billing` schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "billing"

# The plans a row may name; what each one unlocks is the plan table in service.py.
PLAN_NAMES = ("free", "premium", "enterprise")


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

    __table_args__ = (
        CheckConstraint(f"plan IN ({', '.join(repr(name) for name in PLAN_NAMES)})", name="plan"),
    )


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
