"""announcement settings: whether, where and how often a community announces level-ups,
rewards and badges, and the reward and badge templates (the level-up one exists)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    sa.Column("announce", sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column(
        "announce_target", sa.String(length=32), server_default="activity_channel", nullable=False
    ),
    sa.Column("announce_channel_id", sa.String(length=64), nullable=True),
    sa.Column("announce_level_ups", sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column("announce_rewards", sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column("announce_badges", sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column("announce_every_levels", sa.Integer(), server_default="1", nullable=False),
    sa.Column("announce_every_level_from", sa.Integer(), server_default="0", nullable=False),
    sa.Column("reward_template", sa.Text(), nullable=True),
    sa.Column("badge_template", sa.Text(), nullable=True),
)


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("community_settings", column, schema="rewards")


def downgrade() -> None:
    for column in reversed(_COLUMNS):
        op.drop_column("community_settings", column.name, schema="rewards")
