"""companies: which company each community belongs to, and subscriptions held by a company

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:30:00.000000

Existing subscriptions stay with their community: billing learns each community's company
only after this runs (xp announces it), and a community's own enterprise subscription moves
to its company when it joins one (`wee5_billing.companies`, and the `company-plans` task).
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
    op.create_table('companies',
    sa.Column('company_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('owner_account_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('whop', 'group')", name=op.f('ck_companies_kind')),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_companies')),
    schema='billing'
    )
    op.create_table('company_communities',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('company_id', sa.String(length=64), nullable=False),
    sa.Column('learned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('community_id', name=op.f('pk_company_communities')),
    schema='billing'
    )
    op.create_index(op.f('ix_billing_company_communities_company_id'), 'company_communities', ['company_id'], unique=False, schema='billing')
    op.add_column('subscriptions', sa.Column('holder', sa.String(length=16), server_default='community', nullable=False), schema='billing')
    op.add_column('subscriptions', sa.Column('owner_community_id', sa.String(length=64), nullable=True), schema='billing')
    op.create_check_constraint(op.f('ck_subscriptions_holder'), 'subscriptions', "holder IN ('community', 'company')", schema='billing')


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint(op.f('ck_subscriptions_holder'), 'subscriptions', schema='billing')
    op.drop_column('subscriptions', 'owner_community_id', schema='billing')
    op.drop_column('subscriptions', 'holder', schema='billing')
    op.drop_index(op.f('ix_billing_company_communities_company_id'), table_name='company_communities', schema='billing')
    op.drop_table('company_communities', schema='billing')
    op.drop_table('companies', schema='billing')
