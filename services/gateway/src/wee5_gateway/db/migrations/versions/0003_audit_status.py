"""audit log: pending entries recorded before a downstream call, completed after it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:50:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('audit_log', sa.Column('status', sa.String(length=16), server_default='done', nullable=False), schema='gateway')
    op.add_column('audit_log', sa.Column('idempotency_key', sa.Text(), nullable=True), schema='gateway')
    op.create_check_constraint(op.f('ck_audit_log_status'), 'audit_log', "status IN ('pending', 'done')", schema='gateway')
    op.create_index('ix_audit_log_idempotency_key', 'audit_log', ['community_id', 'action', 'idempotency_key'], unique=False, schema='gateway', postgresql_where=sa.text('idempotency_key IS NOT NULL'))


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_audit_log_idempotency_key', table_name='audit_log', schema='gateway', postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.drop_constraint(op.f('ck_audit_log_status'), 'audit_log', schema='gateway', type_='check')
    op.drop_column('audit_log', 'idempotency_key', schema='gateway')
    op.drop_column('audit_log', 'status', schema='gateway')
