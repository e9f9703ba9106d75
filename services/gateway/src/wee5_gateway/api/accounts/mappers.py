"""The gateway's account rows -> the accounts context's bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from wee5_gateway.api.accounts.schemas import AccountView, CommunityRoleView, SessionView
from wee5_gateway.db.models import CommunityRole, RefreshToken, User


def account_view(user: User) -> AccountView:
    return AccountView(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        is_platform_admin=user.is_platform_admin,
    )


def community_role_view(role: CommunityRole) -> CommunityRoleView:
    return CommunityRoleView(
        community_id=role.community_id,
        role=role.role,  # type: ignore[arg-type]  # the table's check constraint
        member_user_id=role.member_user_id,
    )


def session_view(
    live_token: RefreshToken, started_at: datetime, current_session: uuid.UUID | None
) -> SessionView:
    return SessionView(
        id=live_token.family_id,
        started_at=started_at,
        last_used_at=live_token.issued_at,
        expires_at=live_token.expires_at,
        user_agent=live_token.user_agent,
        client_ip=live_token.client_ip,
        current=live_token.family_id == current_session,
    )
