"""Tables of the `rewards` schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "rewards"

REWARD_KINDS = ("free_days", "discount_code")
# pending → applying → granted, or failed (retried) → dead; waiting = no provider key yet.
REWARD_STATUSES = ("pending", "applying", "granted", "failed", "dead", "waiting")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class Reward(Base):
    """A reward a member earned by reaching a level, and the state of its delivery.

    The unique (community, member, level) key is what makes a reward exist exactly once, however
    often the level-up that earned it is delivered or replayed.
    """

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    free_days: Mapped[int | None] = mapped_column(Integer)
    discount_percent: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "level"),
        CheckConstraint(_one_of("kind", REWARD_KINDS), name="kind"),
        CheckConstraint(_one_of("status", REWARD_STATUSES), name="status"),
        Index("ix_rewards_community", "community_id", "id"),
    )


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
