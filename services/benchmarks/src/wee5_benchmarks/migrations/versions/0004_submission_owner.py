"""submissions keep their owner

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 17:05:00

The owner is who wrote the answers as the gateway authenticated them ("account:<id>",
"whop:<user id>"). Existing rows get the owner their member id shows: an account id (a UUID,
what the gateway used for accounts with no member link) is that account's; a Whop user id
(`user_…`) is that Whop user's. Any other member id (a linked Discord id, another source's
id) cannot be attributed: its owner stays NULL, nobody reads it as theirs, and the member's
next submission claims the row with its history erased.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def upgrade() -> None:
    op.add_column(
        "submissions", sa.Column("owner", sa.String(length=80), nullable=True), schema="benchmarks"
    )
    op.execute(
        f"UPDATE benchmarks.submissions SET owner = 'account:' || user_id WHERE user_id ~ '{_UUID}'"
    )
    op.execute(
        "UPDATE benchmarks.submissions SET owner = 'whop:' || user_id "
        "WHERE owner IS NULL AND user_id LIKE 'user\\_%'"
    )
    op.create_index(
        "ix_submissions_owner",
        "submissions",
        ["community_id", "owner"],
        unique=False,
        schema="benchmarks",
    )


def downgrade() -> None:
    op.drop_index("ix_submissions_owner", table_name="submissions", schema="benchmarks")
    op.drop_column("submissions", "owner", schema="benchmarks")
