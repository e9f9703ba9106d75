"""xp schema: a partial index of the members hidden from the boards

A period board is loaded without its community's hidden members; without this index, finding
those few read every member of the community (a third of a second at a million members).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_members_hidden",
        "members",
        ["community_id", "user_id"],
        unique=False,
        schema="xp",
        postgresql_where=sa.text("hidden_from_leaderboards"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_members_hidden",
        table_name="members",
        schema="xp",
        postgresql_where=sa.text("hidden_from_leaderboards"),
    )
