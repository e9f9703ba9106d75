"""gateway schema: accounts that sign in with Discord, one per Discord user

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 20:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discord_identities",
        sa.Column("discord_user_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["gateway.users.id"],
            name=op.f("fk_discord_identities_account_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("discord_user_id", name=op.f("pk_discord_identities")),
        sa.UniqueConstraint("account_id", name=op.f("uq_discord_identities_account_id")),
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_table("discord_identities", schema="gateway")
