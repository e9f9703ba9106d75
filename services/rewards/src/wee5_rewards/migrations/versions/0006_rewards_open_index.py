"""an index of the rewards not granted, by status (the rewards gauge of /metrics)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:50:00

Granted rewards are nearly all rows and never counted; the scrape counts the rest by status
from this partial index instead of reading the table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_rewards_open_status",
        "rewards",
        ["status"],
        schema="rewards",
        postgresql_where="status <> 'granted'",
    )


def downgrade() -> None:
    op.drop_index("ix_rewards_open_status", table_name="rewards", schema="rewards")
