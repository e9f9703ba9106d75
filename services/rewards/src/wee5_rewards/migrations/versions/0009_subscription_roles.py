"""subscription roles: a community's subscription role, a role assignment's action (add or
remove, ordered by when its source stated it) and members' linked Discord accounts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "community_settings",
        sa.Column("discord_subscription_role_id", sa.String(length=32), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "role_assignments",
        sa.Column("action", sa.String(length=8), server_default="add", nullable=False),
        schema="rewards",
    )
    op.add_column(
        "role_assignments",
        sa.Column("action_at", sa.DateTime(timezone=True), nullable=True),
        schema="rewards",
    )
    op.create_check_constraint(
        op.f("ck_role_assignments_action"),
        "role_assignments",
        "action IN ('add', 'remove')",
        schema="rewards",
    )
    op.drop_constraint(
        op.f("ck_role_assignments_status"), "role_assignments", type_="check", schema="rewards"
    )
    op.create_check_constraint(
        op.f("ck_role_assignments_status"),
        "role_assignments",
        "status IN ('pending', 'assigned', 'removed', 'dead', 'waiting')",
        schema="rewards",
    )
    op.create_table(
        "discord_links",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("discord_user_id", sa.String(length=32), nullable=False),
        sa.Column(
            "linked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_discord_links")),
        sa.UniqueConstraint("discord_user_id", name=op.f("uq_discord_links_discord_user_id")),
        schema="rewards",
    )


def downgrade() -> None:
    op.drop_table("discord_links", schema="rewards")
    op.execute("DELETE FROM rewards.role_assignments WHERE status = 'removed'")
    op.drop_constraint(
        op.f("ck_role_assignments_status"), "role_assignments", type_="check", schema="rewards"
    )
    op.create_check_constraint(
        op.f("ck_role_assignments_status"),
        "role_assignments",
        "status IN ('pending', 'assigned', 'dead', 'waiting')",
        schema="rewards",
    )
    op.drop_constraint(
        op.f("ck_role_assignments_action"), "role_assignments", type_="check", schema="rewards"
    )
    op.drop_column("role_assignments", "action_at", schema="rewards")
    op.drop_column("role_assignments", "action", schema="rewards")
    op.drop_column("community_settings", "discord_subscription_role_id", schema="rewards")
