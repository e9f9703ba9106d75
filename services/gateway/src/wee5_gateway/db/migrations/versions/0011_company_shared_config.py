"""gateway schema: a company's shared configuration template and the communities following it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:05:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTS = "part IN ('xp_config', 'reward_rules', 'badges')"


def upgrade() -> None:
    op.create_table(
        "company_shared_templates",
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(_PARTS, name=op.f("ck_company_shared_templates_part")),
        sa.PrimaryKeyConstraint("company_id", "part", name=op.f("pk_company_shared_templates")),
        schema="gateway",
    )
    op.create_table(
        "company_shared_followers",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("part", sa.String(length=16), nullable=False),
        sa.Column("company_id", sa.String(length=64), nullable=False),
        sa.Column("applied", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(_PARTS, name=op.f("ck_company_shared_followers_part")),
        sa.PrimaryKeyConstraint(
            "community_id", "part", name=op.f("pk_company_shared_followers")
        ),
        schema="gateway",
    )
    op.create_index(
        "ix_company_shared_followers_company",
        "company_shared_followers",
        ["company_id", "part"],
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_table("company_shared_followers", schema="gateway")
    op.drop_table("company_shared_templates", schema="gateway")
