"""gateway schema: who may read each community's leaderboard (public, members, admins)

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02 15:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "leaderboard_settings",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "visibility IN ('public', 'members', 'admins')",
            name=op.f("ck_leaderboard_settings_visibility"),
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_leaderboard_settings")),
        schema="gateway",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("leaderboard_settings", schema="gateway")
