"""xp schema: a community's choice to count on its company's board

Off by default: a community's XP joins its company's board only when one of its admins opts
in (issue 20: the company board is opt-in per community).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "communities",
        sa.Column(
            "in_company_board", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        schema="xp",
    )


def downgrade() -> None:
    op.drop_column("communities", "in_company_board", schema="xp")
