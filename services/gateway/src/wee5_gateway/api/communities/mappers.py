"""Gateway rows <-> the communities context's bodies, and the audit log's page cursor."""

from __future__ import annotations

from wee5_gateway.api.communities.schemas import ApiKeyView, AuditEntryView, AuditPage, RoleView
from wee5_gateway.db.models import ApiKey, AuditEntry, CommunityRole
from wee5_kit.pagination import decode_page_token, encode_page_token, take_page


def role_view(role: CommunityRole) -> RoleView:
    return RoleView(
        community_id=role.community_id,
        account_id=role.account_id,
        role=role.role,  # type: ignore[arg-type]
        member_user_id=role.member_user_id,
        created_at=role.created_at,
    )


def role_state(role: CommunityRole | None) -> dict[str, str | None] | None:
    if role is None:
        return None
    return {"role": role.role, "member_user_id": role.member_user_id}


def key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        community_id=key.community_id,
        name=key.name,
        scopes=list(key.scopes),
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
    )


def audit_entry_view(row: AuditEntry) -> AuditEntryView:
    return AuditEntryView(
        id=row.id,
        community_id=row.community_id,
        actor_account_id=row.actor_account_id,
        actor_api_key_id=row.actor_api_key_id,
        actor_whop_user_id=row.actor_whop_user_id,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
        created_at=row.created_at,
        status=row.status,  # type: ignore[arg-type]
        actor_discord_user_id=row.actor_discord_user_id,
    )


def audit_page(rows: list[AuditEntry], limit: int) -> AuditPage:
    """A page of the audit log from `limit + 1` rows, newest first; its cursor names the
    last entry shown."""
    shown, more = take_page(rows, limit)
    entries = [audit_entry_view(row) for row in shown]
    return AuditPage(entries, encode_page_token(entries[-1].id) if more and entries else None)


def audit_cursor_before(cursor: str | None) -> int | None:
    """The entry id a page starts below; a forged cursor is `InvalidPageToken` (400)."""
    if not cursor:
        return None
    (entry_id,) = decode_page_token(cursor, int, name="cursor")
    return int(entry_id)
