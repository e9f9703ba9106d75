"""Whop sign-in: communities learned from Whop, each company's owner, a Whop actor in the audit
log, and the community of a webhook receipt

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 15:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'whop_experiences',
        sa.Column('community_id', sa.String(length=64), nullable=False),
        sa.Column('company_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('learned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('community_id', name=op.f('pk_whop_experiences')),
        schema='gateway',
    )
    op.create_index('ix_whop_experiences_company', 'whop_experiences', ['company_id'], unique=False, schema='gateway')
    op.create_table(
        'whop_company_owners',
        sa.Column('company_id', sa.String(length=64), nullable=False),
        sa.Column('whop_user_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('company_id', name=op.f('pk_whop_company_owners')),
        schema='gateway',
    )
    op.add_column('audit_log', sa.Column('actor_whop_user_id', sa.String(length=64), nullable=True), schema='gateway')
    op.add_column('webhook_receipts', sa.Column('community_id', sa.String(length=64), nullable=True), schema='gateway')
    op.create_index('ix_webhook_receipts_community', 'webhook_receipts', ['community_id'], unique=False, schema='gateway')


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_webhook_receipts_community', table_name='webhook_receipts', schema='gateway')
    op.drop_column('webhook_receipts', 'community_id', schema='gateway')
    op.drop_column('audit_log', 'actor_whop_user_id', schema='gateway')
    op.drop_table('whop_company_owners', schema='gateway')
    op.drop_index('ix_whop_experiences_company', table_name='whop_experiences', schema='gateway')
    op.drop_table('whop_experiences', schema='gateway')
