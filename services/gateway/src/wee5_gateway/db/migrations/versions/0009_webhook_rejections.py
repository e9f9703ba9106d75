"""gateway schema: why an authentic webhook was rejected (acknowledged, but unusable)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("webhook_receipts", sa.Column("reason", sa.Text(), nullable=True), schema="gateway")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("webhook_receipts", "reason", schema="gateway")
