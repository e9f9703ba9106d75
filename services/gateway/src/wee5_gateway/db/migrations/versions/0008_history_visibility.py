"""gateway schema: who may read members' XP histories (each member their own and the admins,
or every member), per community

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "leaderboard_settings",
        sa.Column(
            "history_visibility",
            sa.String(length=16),
            server_default="self_and_admins",
            nullable=False,
        ),
        schema="gateway",
    )
    op.create_check_constraint(
        op.f("ck_leaderboard_settings_history_visibility"),
        "leaderboard_settings",
        "history_visibility IN ('self_and_admins', 'members')",
        schema="gateway",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("leaderboard_settings", "history_visibility", schema="gateway")
