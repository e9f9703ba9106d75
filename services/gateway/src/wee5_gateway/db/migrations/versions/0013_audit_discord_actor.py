"""gateway schema: a Discord user as the actor of an audit entry (slash commands such as
/give-xp)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 22:30:00.000000

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
        "audit_log",
        sa.Column("actor_discord_user_id", sa.String(length=32), nullable=True),
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_column("audit_log", "actor_discord_user_id", schema="gateway")
