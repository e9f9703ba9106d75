"""a Discord guild is bound to one community at most, and who bound it is kept

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 16:50:00

Existing bindings stay (marked "legacy"), except where one guild was set on several
communities: none of those can be told apart from a hijack, so each of them is cleared (the
community whose id is the guild itself keeps it) and must be bound again through the bot's
install flow. Afterwards a unique constraint makes a second binding impossible.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "community_settings",
        sa.Column("discord_guild_bound_by", sa.String(length=80), nullable=True),
        schema="rewards",
    )
    op.execute(
        """
        UPDATE rewards.community_settings AS s SET discord_guild_id = NULL
        WHERE s.discord_guild_id IS NOT NULL
          AND s.community_id <> s.discord_guild_id
          AND EXISTS (
            SELECT 1 FROM rewards.community_settings AS o
            WHERE o.discord_guild_id = s.discord_guild_id AND o.community_id <> s.community_id
          )
        """
    )
    op.execute(
        "UPDATE rewards.community_settings SET discord_guild_bound_by = 'legacy' "
        "WHERE discord_guild_id IS NOT NULL"
    )
    op.create_unique_constraint(
        op.f("uq_community_settings_discord_guild_id"),
        "community_settings",
        ["discord_guild_id"],
        schema="rewards",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("uq_community_settings_discord_guild_id"),
        "community_settings",
        schema="rewards",
        type_="unique",
    )
    op.drop_column("community_settings", "discord_guild_bound_by", schema="rewards")
