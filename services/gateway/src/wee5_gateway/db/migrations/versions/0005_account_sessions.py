"""account sessions: the user agent and client IP each refresh token was issued to

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0005'
# down_revision becomes "0004" when the whop branch merges
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('refresh_tokens', sa.Column('user_agent', sa.Text(), nullable=True), schema='gateway')
    op.add_column('refresh_tokens', sa.Column('client_ip', sa.String(length=64), nullable=True), schema='gateway')


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column('refresh_tokens', 'client_ip', schema='gateway')
    op.drop_column('refresh_tokens', 'user_agent', schema='gateway')
