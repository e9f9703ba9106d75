"""xp schema: point awards by idempotency key, imported XP per source, MEE6 links and
per-member sync state, Whop forum sync cursors

Revision ID: 0010
Revises: 0003
Create Date: 2026-11-22 05:51:03.639349

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('forum_syncs',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.String(length=500), nullable=True),
    sa.Column('posts_recorded', sa.BigInteger(), nullable=False),
    sa.Column('last_post_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('community_id', name=op.f('pk_forum_syncs')),
    schema='xp'
    )
    op.create_table('imported_xp',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('xp', sa.BigInteger(), nullable=False),
    sa.Column('message_count', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', 'source', 'user_id', name=op.f('pk_imported_xp')),
    schema='xp'
    )
    op.create_table('mee6_links',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('guild_id', sa.String(length=32), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', name=op.f('pk_mee6_links')),
    schema='xp'
    )
    op.create_table('mee6_synced_members',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('guild_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('xp_seen', sa.BigInteger(), nullable=False),
    sa.Column('xp_counted', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', 'guild_id', 'user_id', name=op.f('pk_mee6_synced_members')),
    schema='xp'
    )
    op.create_table('point_awards',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', 'idempotency_key', name=op.f('pk_point_awards')),
    schema='xp'
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('point_awards', schema='xp')
    op.drop_table('mee6_synced_members', schema='xp')
    op.drop_table('mee6_links', schema='xp')
    op.drop_table('imported_xp', schema='xp')
    op.drop_table('forum_syncs', schema='xp')
