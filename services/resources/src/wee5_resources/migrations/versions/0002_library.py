"""resources library: settings, uploads, resources with full-text search, downloads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:43:18.698660

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "library_settings",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_library_settings")),
        schema="resources",
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("featured", sa.Boolean(), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("checksum_sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=400), nullable=False),
        sa.Column("download_count", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('english', coalesce(title, '')), 'A') || setweight(to_tsvector('english', coalesce(description, '')), 'B')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(
            "type IN ('template', 'sop', 'playbook', 'course', 'video')",
            name=op.f("ck_resources_type"),
        ),
        sa.CheckConstraint("download_count >= 0", name=op.f("ck_resources_download_count")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_resources_storage_key")),
        schema="resources",
    )
    op.create_index(
        "ix_resources_community_created",
        "resources",
        ["community_id", "created_at", "id"],
        unique=False,
        schema="resources",
    )
    op.create_index(
        "ix_resources_community_downloads",
        "resources",
        ["community_id", "download_count", "id"],
        unique=False,
        schema="resources",
    )
    op.create_index(
        "ix_resources_search",
        "resources",
        ["search"],
        unique=False,
        schema="resources",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_resources_tags",
        "resources",
        ["tags"],
        unique=False,
        schema="resources",
        postgresql_using="gin",
    )
    op.create_table(
        "uploads",
        sa.Column("storage_key", sa.String(length=400), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("max_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("storage_key", name=op.f("pk_uploads")),
        schema="resources",
    )
    op.create_table(
        "downloads",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("first_by_member", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column(
            "downloaded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.resources.id"],
            name=op.f("fk_downloads_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_downloads")),
        schema="resources",
    )
    op.create_index(
        "ix_downloads_community_time",
        "downloads",
        ["community_id", "downloaded_at"],
        unique=False,
        schema="resources",
    )
    op.create_index(
        "ix_downloads_resource_time",
        "downloads",
        ["resource_id", "downloaded_at"],
        unique=False,
        schema="resources",
    )
    op.create_index(
        "uq_downloads_first",
        "downloads",
        ["resource_id", "user_id"],
        unique=True,
        schema="resources",
        postgresql_where=sa.text("first_by_member"),
    )
    op.create_index(
        "uq_downloads_idempotency",
        "downloads",
        ["community_id", "user_id", "idempotency_key"],
        unique=True,
        schema="resources",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(
        "uq_downloads_idempotency",
        table_name="downloads",
        schema="resources",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index(
        "uq_downloads_first",
        table_name="downloads",
        schema="resources",
        postgresql_where=sa.text("first_by_member"),
    )
    op.drop_index("ix_downloads_resource_time", table_name="downloads", schema="resources")
    op.drop_index("ix_downloads_community_time", table_name="downloads", schema="resources")
    op.drop_table("downloads", schema="resources")
    op.drop_table("uploads", schema="resources")
    op.drop_index(
        "ix_resources_tags", table_name="resources", schema="resources", postgresql_using="gin"
    )
    op.drop_index(
        "ix_resources_search", table_name="resources", schema="resources", postgresql_using="gin"
    )
    op.drop_index("ix_resources_community_downloads", table_name="resources", schema="resources")
    op.drop_index("ix_resources_community_created", table_name="resources", schema="resources")
    op.drop_table("resources", schema="resources")
    op.drop_table("library_settings", schema="resources")
