"""gateway schema: every change of a role or an API key is announced (NOTIFY) at commit, so
each gateway replica drops what it cached of it at once

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel and the payloads core/access_cache.py listens for: `role <community> <account>`
# and `key <key hash>`. Triggers, not application code, so no write path can forget it (bulk
# statements, cascades of a deleted account, an operator's SQL).
CHANNEL = "wee5_gateway_access"


def upgrade() -> None:
    """Upgrade schema."""
    op.execute(
        f"""
        CREATE FUNCTION gateway.announce_role_change() RETURNS trigger AS $$
        DECLARE changed gateway.community_roles;
        BEGIN
          changed := COALESCE(NEW, OLD);
          PERFORM pg_notify('{CHANNEL}',
                            'role ' || changed.community_id || ' ' || changed.account_id);
          IF TG_OP = 'UPDATE' AND (OLD.community_id, OLD.account_id)
             IS DISTINCT FROM (NEW.community_id, NEW.account_id) THEN
            PERFORM pg_notify('{CHANNEL}', 'role ' || OLD.community_id || ' ' || OLD.account_id);
          END IF;
          RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION gateway.announce_api_key_change() RETURNS trigger AS $$
        BEGIN
          PERFORM pg_notify('{CHANNEL}', 'key ' || COALESCE(NEW.key_hash, OLD.key_hash));
          RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER community_roles_announce AFTER INSERT OR UPDATE OR DELETE "
        "ON gateway.community_roles FOR EACH ROW EXECUTE FUNCTION gateway.announce_role_change()"
    )
    # Only a change of what is cached (revocation, scopes); the once-a-minute last-use stamp
    # of a busy key announces nothing.
    op.execute(
        "CREATE TRIGGER api_keys_announce AFTER UPDATE OF revoked_at, scopes, community_id, "
        "key_hash OR DELETE ON gateway.api_keys "
        "FOR EACH ROW EXECUTE FUNCTION gateway.announce_api_key_change()"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP TRIGGER api_keys_announce ON gateway.api_keys")
    op.execute("DROP TRIGGER community_roles_announce ON gateway.community_roles")
    op.execute("DROP FUNCTION gateway.announce_api_key_change()")
    op.execute("DROP FUNCTION gateway.announce_role_change()")
