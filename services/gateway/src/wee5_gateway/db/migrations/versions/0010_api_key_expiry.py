"""gateway schema: API keys may expire

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:15:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TRIGGER = (
    "CREATE TRIGGER api_keys_announce AFTER UPDATE OF revoked_at, scopes, community_id, "
    "key_hash{} OR DELETE ON gateway.api_keys "
    "FOR EACH ROW EXECUTE FUNCTION gateway.announce_api_key_change()"
)


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        schema="gateway",
    )
    # The cached keys carry their expiry: a changed expiry is announced like a revocation.
    op.execute("DROP TRIGGER api_keys_announce ON gateway.api_keys")
    op.execute(_TRIGGER.format(", expires_at"))


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_announce ON gateway.api_keys")
    op.execute(_TRIGGER.format(""))
    op.drop_column("api_keys", "expires_at", schema="gateway")
