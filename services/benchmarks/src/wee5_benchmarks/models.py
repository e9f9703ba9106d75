"""Tables of the `benchmarks` schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "benchmarks"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class CommunitySettings(Base):
    """A community's choice to run benchmarks; no row: the deployment's default applies."""

    __tablename__ = "community_settings"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column()
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class CategoryState(Base):
    """One row per community category: its revision counts every change that can move its
    results. Writers take the row lock for their whole transaction, so revisions commit in
    order and a reader that saw revision R has seen every change up to R."""

    __tablename__ = "category_state"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)


class Submission(Base):
    """A member's current answers in a category. Deleting one erases its answers and history
    but keeps this row (answers NULL, status `deleted`) so a later first-again submission
    never earns the first-submission points twice."""

    __tablename__ = "submissions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    community_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    # Who wrote it, as authenticated ("account:<id>", "whop:<user id>"): only they read, change
    # or delete it. Linking another account to `user_id` does not move it. NULL: written
    # before owners were kept and not attributable; the next submission claims it afresh.
    owner: Mapped[str | None] = mapped_column(String(80))
    category: Mapped[str] = mapped_column(String(32))
    schema_version: Mapped[int] = mapped_column(Integer)
    # Revision counter of this member's answers: 1 for the first, +1 for every change.
    version: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Typed copies of the answers that results read (see categories.typed_values).
    numbers: Mapped[list[float | None] | None] = mapped_column(ARRAY(Double))
    choices: Mapped[list[int | None] | None] = mapped_column(ARRAY(Integer))
    # accepted | pending_review | rejected | deleted
    status: Mapped[str] = mapped_column(String(16))
    flagged: Mapped[bool] = mapped_column(default=False)
    outliers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The category revision of this row's last change (results read changes since theirs).
    revision: Mapped[int] = mapped_column(BigInteger)
    # Changes (new answers or a deletion) since `changes_since`, a window of 24 hours that
    # restarts with the first change after it ends; deleting does not reset it.
    recent_changes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    changes_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "category"),
        Index("ix_submissions_owner", "community_id", "owner"),
        Index("ix_submissions_changes", "community_id", "category", "revision"),
        Index(
            "ix_submissions_review_queue",
            "community_id",
            "updated_at",
            "id",
            postgresql_where="status = 'pending_review'",
        ),
    )


class SubmissionRevision(Base):
    """A previous version of a submission, kept when a newer one replaced it."""

    __tablename__ = "submission_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    schema_version: Mapped[int] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replaced_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (UniqueConstraint("submission_id", "version"),)


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
