"""change window of submissions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:34:09.209032

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "submissions",
        sa.Column("recent_changes", sa.Integer(), server_default="0", nullable=False),
        schema="benchmarks",
    )
    op.add_column(
        "submissions",
        sa.Column("changes_since", sa.DateTime(timezone=True), nullable=True),
        schema="benchmarks",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("submissions", "changes_since", schema="benchmarks")
    op.drop_column("submissions", "recent_changes", schema="benchmarks")
