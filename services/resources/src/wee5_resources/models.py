"""Tables of the `resources` schema: library settings, upload intents, resources, downloads."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wee5_kit.db import schema_metadata
from wee5_kit.events import outbox_table, processed_events_table

SCHEMA = "resources"

RESOURCE_TYPES = ("template", "sop", "playbook", "course", "video")


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class LibrarySettings(Base):
    """A community's library switch and categories. No row: on, with the default categories."""

    __tablename__ = "library_settings"

    community_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Upload(Base):
    """A signed upload URL handed out: what the object at its key may be, and who asked.

    CreateResource accepts only keys found here, in the same community, once."""

    __tablename__ = "uploads"

    storage_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    community_id: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    max_size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set when a resource was created from it; the key cannot be used again.
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Resource(Base):
    __tablename__ = "resources"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    community_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    featured: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    file_name: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    checksum_sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(400), unique=True)
    download_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # Full-text search over title (weight A) and description (weight B), kept by Postgres.
    search: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'B')",
            persisted=True,
        ),
        deferred=True,
    )

    __table_args__ = (
        CheckConstraint(
            f"type IN ({', '.join(repr(name) for name in RESOURCE_TYPES)})", name="type"
        ),
        CheckConstraint("download_count >= 0", name="download_count"),
        Index("ix_resources_community_created", "community_id", "created_at", "id"),
        Index("ix_resources_community_downloads", "community_id", "download_count", "id"),
        Index("ix_resources_search", "search", postgresql_using="gin"),
        Index("ix_resources_tags", "tags", postgresql_using="gin"),
    )


class Download(Base):
    """One counted download by a member (admins' downloads are not counted)."""

    __tablename__ = "downloads"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    community_id: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("resources.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(100))
    # The member's first download of the resource: the one that earns points.
    first_by_member: Mapped[bool] = mapped_column(Boolean)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    downloaded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        Index("ix_downloads_community_time", "community_id", "downloaded_at"),
        Index("ix_downloads_resource_time", "resource_id", "downloaded_at"),
        Index(
            "uq_downloads_idempotency",
            "community_id",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        # At most one first download per member and resource, however many race.
        Index(
            "uq_downloads_first",
            "resource_id",
            "user_id",
            unique=True,
            postgresql_where=text("first_by_member"),
        ),
    )


outbox = outbox_table(Base.metadata)
processed_events = processed_events_table(Base.metadata)
