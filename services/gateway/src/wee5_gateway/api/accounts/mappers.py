"""The gateway's account rows -> the accounts context's bodies."""

from __future__ import annotations

from wee5_gateway.api.accounts.schemas import AccountView, CommunityRoleView
from wee5_gateway.db.models import CommunityRole, User


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
