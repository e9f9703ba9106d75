"""xp schema: when a community's WEE5 group last changed (billing's `billing.community_group`)

A community outside Whop gets its company from billing's group events; the time of the latest
one applied keeps an older event (delivered late) from undoing a newer one.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:55:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "communities",
        sa.Column("group_changed_at", sa.DateTime(timezone=True), nullable=True),
        schema="xp",
    )


def downgrade() -> None:
    op.drop_column("communities", "group_changed_at", schema="xp")
