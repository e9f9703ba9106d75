"""xp schema: member profiles (name, username, avatar from Whop) and hiding from boards

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("avatar_url", sa.String(length=2000), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profiles")),
        schema="xp",
    )
    op.add_column(
        "members",
        sa.Column(
            "hidden_from_leaderboards",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
        ),
        schema="xp",
    )


def downgrade() -> None:
    op.drop_column("members", "hidden_from_leaderboards", schema="xp")
    op.drop_table("profiles", schema="xp")
