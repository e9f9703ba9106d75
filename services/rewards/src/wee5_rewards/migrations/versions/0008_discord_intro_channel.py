"""the Discord bot's settings of a community: its introductions channel (intro points), its
welcome channel and the welcome and onboarding DM templates

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "community_settings",
        sa.Column("discord_intro_channel_id", sa.String(length=32), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "community_settings",
        sa.Column("discord_welcome_channel_id", sa.String(length=32), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "community_settings",
        sa.Column("discord_welcome_template", sa.Text(), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "community_settings",
        sa.Column("discord_welcome_dm_template", sa.Text(), nullable=True),
        schema="rewards",
    )


def downgrade() -> None:
    for column in (
        "discord_welcome_dm_template",
        "discord_welcome_template",
        "discord_welcome_channel_id",
        "discord_intro_channel_id",
    ):
        op.drop_column("community_settings", column, schema="rewards")
