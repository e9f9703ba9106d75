"""submissions, history, settings and category revisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:45:22.807976

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
        "category_state",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "category", name=op.f("pk_category_state")),
        schema="benchmarks",
    )
    op.create_table(
        "community_settings",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_community_settings")),
        schema="benchmarks",
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("numbers", postgresql.ARRAY(sa.Double()), nullable=True),
        sa.Column("choices", postgresql.ARRAY(sa.Integer()), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("outliers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint(
            "community_id",
            "user_id",
            "category",
            name=op.f("uq_submissions_community_id_user_id_category"),
        ),
        schema="benchmarks",
    )
    op.create_index(
        "ix_submissions_changes",
        "submissions",
        ["community_id", "category", "revision"],
        unique=False,
        schema="benchmarks",
    )
    op.create_index(
        "ix_submissions_review_queue",
        "submissions",
        ["community_id", "updated_at", "id"],
        unique=False,
        schema="benchmarks",
        postgresql_where="status = 'pending_review'",
    )
    op.create_table(
        "submission_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "replaced_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["benchmarks.submissions.id"],
            name=op.f("fk_submission_history_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_history")),
        sa.UniqueConstraint(
            "submission_id", "version", name=op.f("uq_submission_history_submission_id_version")
        ),
        schema="benchmarks",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("submission_history", schema="benchmarks")
    op.drop_index(
        "ix_submissions_review_queue",
        table_name="submissions",
        schema="benchmarks",
        postgresql_where="status = 'pending_review'",
    )
    op.drop_index("ix_submissions_changes", table_name="submissions", schema="benchmarks")
    op.drop_table("submissions", schema="benchmarks")
    op.drop_table("community_settings", schema="benchmarks")
    op.drop_table("category_state", schema="benchmarks")
