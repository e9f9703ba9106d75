"""xp engine: config, award keys, streaks, tie-break times, ledger levels and days

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 05:42:32.333291

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('award_keys',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', 'idempotency_key', name=op.f('pk_award_keys')),
    schema='xp'
    )
    op.create_table('configs',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', name=op.f('pk_configs')),
    schema='xp'
    )
    op.alter_column('ledger', 'reason', type_=sa.String(length=200), existing_type=sa.String(length=64), existing_nullable=False, schema='xp')
    op.add_column('ledger', sa.Column('level_before', sa.Integer(), nullable=True), schema='xp')
    op.add_column('ledger', sa.Column('level_after', sa.Integer(), nullable=True), schema='xp')
    op.add_column('ledger', sa.Column('day', sa.Date(), nullable=True), schema='xp')
    op.add_column('ledger', sa.Column('actor', sa.String(length=64), nullable=True), schema='xp')
    op.create_index('ix_ledger_community_created', 'ledger', ['community_id', 'created_at'], unique=False, schema='xp')
    op.add_column('members', sa.Column('highest_level', sa.Integer(), server_default=sa.text('0'), nullable=False), schema='xp')
    op.add_column('members', sa.Column('reached_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False), schema='xp')
    op.add_column('members', sa.Column('current_streak', sa.Integer(), server_default=sa.text('0'), nullable=False), schema='xp')
    op.add_column('members', sa.Column('longest_streak', sa.Integer(), server_default=sa.text('0'), nullable=False), schema='xp')
    op.add_column('members', sa.Column('last_active_day', sa.Date(), nullable=True), schema='xp')
    op.add_column('members', sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=True), schema='xp')
    op.add_column('period_xp', sa.Column('reached_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False), schema='xp')
    # Members from before this revision reached their level already, and their entries
    # counted for UTC days (reconcile derives period XP from ledger days).
    op.execute("UPDATE xp.members SET highest_level = level")
    op.execute("UPDATE xp.ledger SET day = (created_at AT TIME ZONE 'UTC')::date")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('period_xp', 'reached_at', schema='xp')
    op.drop_column('members', 'last_activity_at', schema='xp')
    op.drop_column('members', 'last_active_day', schema='xp')
    op.drop_column('members', 'longest_streak', schema='xp')
    op.drop_column('members', 'current_streak', schema='xp')
    op.drop_column('members', 'reached_at', schema='xp')
    op.drop_column('members', 'highest_level', schema='xp')
    op.drop_index('ix_ledger_community_created', table_name='ledger', schema='xp')
    op.drop_column('ledger', 'actor', schema='xp')
    op.alter_column('ledger', 'reason', type_=sa.String(length=64), existing_type=sa.String(length=200), existing_nullable=False, schema='xp')
    op.drop_column('ledger', 'day', schema='xp')
    op.drop_column('ledger', 'level_after', schema='xp')
    op.drop_column('ledger', 'level_before', schema='xp')
    op.drop_table('configs', schema='xp')
    op.drop_table('award_keys', schema='xp')
