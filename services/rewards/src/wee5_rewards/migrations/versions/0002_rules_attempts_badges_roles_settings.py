"""rules, attempts, badges, roles, settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:42:43.726849

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "badges",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("image_url", sa.Text(), server_default="", nullable=False),
        sa.Column("criteria", sa.String(length=24), nullable=False),
        sa.Column("threshold", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("activity_kind", sa.String(length=32), nullable=True),
        sa.Column("period", sa.String(length=16), server_default="all_time", nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "criteria IN ('level', 'xp', 'activity_count', 'streak', 'rank', 'manual')",
            name=op.f("ck_badges_criteria"),
        ),
        sa.CheckConstraint(
            "period IN ('all_time', 'daily', 'weekly', 'monthly')", name=op.f("ck_badges_period")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badges")),
        sa.UniqueConstraint("community_id", "name", name=op.f("uq_badges_community_id_name")),
        schema="rewards",
    )
    op.create_index(
        "ix_badges_community", "badges", ["community_id", "id"], unique=False, schema="rewards"
    )
    op.create_table(
        "community_settings",
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("rules_customized", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("level_up_template", sa.Text(), nullable=True),
        sa.Column("discord_guild_id", sa.String(length=32), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_community_settings")),
        schema="rewards",
    )
    op.create_table(
        "reward_rules",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("expires_in_days", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("free_days", sa.Integer(), nullable=True),
        sa.Column("discount_type", sa.String(length=16), nullable=True),
        sa.Column("discount_percent", sa.Integer(), nullable=True),
        sa.Column("amount_off_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("duration_months", sa.Integer(), nullable=True),
        sa.Column("badge_id", sa.BigInteger(), nullable=True),
        sa.Column("role_id", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "kind IN ('free_days', 'discount_code', 'badge', 'role')",
            name=op.f("ck_reward_rules_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_rules")),
        sa.UniqueConstraint(
            "community_id", "level", name=op.f("uq_reward_rules_community_id_level")
        ),
        schema="rewards",
    )
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'assigned', 'dead', 'waiting')",
            name=op.f("ck_role_assignments_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignments")),
        sa.UniqueConstraint(
            "community_id",
            "user_id",
            "role_id",
            name=op.f("uq_role_assignments_community_id_user_id_role_id"),
        ),
        schema="rewards",
    )
    op.create_index(
        "ix_role_assignments_due",
        "role_assignments",
        ["next_attempt_at"],
        unique=False,
        schema="rewards",
        postgresql_where="status = 'pending'",
    )
    op.create_table(
        "member_badges",
        sa.Column("badge_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column(
            "awarded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("awarded_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["badge_id"],
            ["rewards.badges.id"],
            name=op.f("fk_member_badges_badge_id_badges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("badge_id", "user_id", name=op.f("pk_member_badges")),
        schema="rewards",
    )
    op.create_index(
        "ix_member_badges_member",
        "member_badges",
        ["community_id", "user_id"],
        unique=False,
        schema="rewards",
    )
    op.create_table(
        "reward_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("reward_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("before_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["rewards.rewards.id"],
            name=op.f("fk_reward_attempts_reward_id_rewards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_attempts")),
        sa.UniqueConstraint(
            "reward_id", "number", name=op.f("uq_reward_attempts_reward_id_number")
        ),
        schema="rewards",
    )
    op.add_column("rewards", sa.Column("rule_id", sa.BigInteger(), nullable=True), schema="rewards")
    op.add_column(
        "rewards",
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "rewards", sa.Column("expires_in_days", sa.Integer(), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("code", sa.String(length=64), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards",
        sa.Column("budget_used", sa.Integer(), server_default="0", nullable=False),
        schema="rewards",
    )
    op.add_column(
        "rewards",
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
        schema="rewards",
    )
    op.add_column("rewards", sa.Column("lease_token", sa.Uuid(), nullable=True), schema="rewards")
    op.add_column(
        "rewards",
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "rewards", sa.Column("membership_id", sa.String(length=64), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("company_id", sa.String(length=64), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("provider_ref", sa.String(length=64), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards",
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        schema="rewards",
    )
    op.add_column(
        "rewards", sa.Column("discount_type", sa.String(length=16), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("amount_off_minor", sa.BigInteger(), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("currency", sa.String(length=3), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("duration_months", sa.Integer(), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("badge_id", sa.BigInteger(), nullable=True), schema="rewards"
    )
    op.add_column(
        "rewards", sa.Column("role_id", sa.String(length=32), nullable=True), schema="rewards"
    )
    op.alter_column(
        "rewards",
        "status",
        existing_type=sa.VARCHAR(length=16),
        type_=sa.String(length=24),
        existing_nullable=False,
        existing_server_default=sa.text("'pending'::character varying"),
        schema="rewards",
    )
    # Check constraints are not autogenerated: the new kinds and statuses by hand.
    op.drop_constraint(op.f("ck_rewards_kind"), "rewards", schema="rewards", type_="check")
    op.drop_constraint(op.f("ck_rewards_status"), "rewards", schema="rewards", type_="check")
    op.create_check_constraint(
        op.f("ck_rewards_kind"),
        "rewards",
        "kind IN ('free_days', 'discount_code', 'badge', 'role')",
        schema="rewards",
    )
    op.create_check_constraint(
        op.f("ck_rewards_status"),
        "rewards",
        "status IN ('pending', 'applying', 'granted', 'failed', 'dead', 'waiting', "
        "'waiting_membership')",
        schema="rewards",
    )
    # Discount codes so far were all percentages.
    op.execute("UPDATE rewards.rewards SET discount_type = 'percent' WHERE kind = 'discount_code'")
    op.create_index(
        "ix_rewards_due",
        "rewards",
        ["next_attempt_at"],
        unique=False,
        schema="rewards",
        postgresql_where="status IN ('pending', 'failed', 'waiting_membership')",
    )
    op.create_index(
        "ix_rewards_leased",
        "rewards",
        ["lease_expires_at"],
        unique=False,
        schema="rewards",
        postgresql_where="status = 'applying'",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(
        "ix_rewards_leased",
        table_name="rewards",
        schema="rewards",
        postgresql_where="status = 'applying'",
    )
    op.drop_index(
        "ix_rewards_due",
        table_name="rewards",
        schema="rewards",
        postgresql_where="status IN ('pending', 'failed', 'waiting_membership')",
    )
    op.drop_constraint(op.f("ck_rewards_kind"), "rewards", schema="rewards", type_="check")
    op.drop_constraint(op.f("ck_rewards_status"), "rewards", schema="rewards", type_="check")
    op.execute("DELETE FROM rewards.rewards WHERE kind IN ('badge', 'role')")
    op.execute("UPDATE rewards.rewards SET status = 'waiting' WHERE status = 'waiting_membership'")
    op.create_check_constraint(
        op.f("ck_rewards_kind"), "rewards", "kind IN ('free_days', 'discount_code')", schema="rewards"
    )
    op.create_check_constraint(
        op.f("ck_rewards_status"),
        "rewards",
        "status IN ('pending', 'applying', 'granted', 'failed', 'dead', 'waiting')",
        schema="rewards",
    )
    op.alter_column(
        "rewards",
        "status",
        existing_type=sa.String(length=24),
        type_=sa.VARCHAR(length=16),
        existing_nullable=False,
        existing_server_default=sa.text("'pending'::character varying"),
        schema="rewards",
    )
    op.drop_column("rewards", "role_id", schema="rewards")
    op.drop_column("rewards", "badge_id", schema="rewards")
    op.drop_column("rewards", "duration_months", schema="rewards")
    op.drop_column("rewards", "currency", schema="rewards")
    op.drop_column("rewards", "amount_off_minor", schema="rewards")
    op.drop_column("rewards", "discount_type", schema="rewards")
    op.drop_column("rewards", "granted_at", schema="rewards")
    op.drop_column("rewards", "provider_ref", schema="rewards")
    op.drop_column("rewards", "company_id", schema="rewards")
    op.drop_column("rewards", "membership_id", schema="rewards")
    op.drop_column("rewards", "lease_expires_at", schema="rewards")
    op.drop_column("rewards", "lease_token", schema="rewards")
    op.drop_column("rewards", "next_attempt_at", schema="rewards")
    op.drop_column("rewards", "budget_used", schema="rewards")
    op.drop_column("rewards", "code", schema="rewards")
    op.drop_column("rewards", "expires_in_days", schema="rewards")
    op.drop_column("rewards", "expires_at", schema="rewards")
    op.drop_column("rewards", "rule_id", schema="rewards")
    op.drop_table("reward_attempts", schema="rewards")
    op.drop_index("ix_member_badges_member", table_name="member_badges", schema="rewards")
    op.drop_table("member_badges", schema="rewards")
    op.drop_index(
        "ix_role_assignments_due",
        table_name="role_assignments",
        schema="rewards",
        postgresql_where="status = 'pending'",
    )
    op.drop_table("role_assignments", schema="rewards")
    op.drop_table("reward_rules", schema="rewards")
    op.drop_table("community_settings", schema="rewards")
    op.drop_index("ix_badges_community", table_name="badges", schema="rewards")
    op.drop_table("badges", schema="rewards")
