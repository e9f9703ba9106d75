"""Gateway rows <-> the communities context's bodies, and the audit log's page cursor."""

from __future__ import annotations

import base64

from wee5_gateway.api.communities.schemas import ApiKeyView, AuditEntryView, RoleView
from wee5_gateway.core.problems import ProblemError
from wee5_gateway.db.models import ApiKey, AuditEntry, CommunityRole


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
    )


def audit_entry_view(row: AuditEntry) -> AuditEntryView:
    return AuditEntryView(
        id=row.id,
        community_id=row.community_id,
        actor_account_id=row.actor_account_id,
        actor_api_key_id=row.actor_api_key_id,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
        request_id=row.request_id,
        created_at=row.created_at,
        status=row.status,  # type: ignore[arg-type]
    )


class InvalidCursor(ProblemError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


def encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw.startswith("a") and raw[1:].isdigit():
            return int(raw[1:])
    except ValueError:  # not base64 (or not ASCII), not UTF-8, not a number
        pass
    raise InvalidCursor("cursor is not one this audit log returned")
