"""Who may read a member's XP history: that member and the community's admins (API keys with
`xp:admin`), or every member when the community chose so (`history_visibility: members` in
its leaderboard settings). Everyone who reads the board still sees each member's totals."""

from __future__ import annotations

from typing import cast

from wee5_gateway.api.xp.schemas import DEFAULT_HISTORY_VISIBILITY, HistoryVisibility
from wee5_gateway.core.access import Access, Action, Role, Rule, permit
from wee5_gateway.core.deps import Sessions
from wee5_gateway.core.problems import Forbidden
from wee5_gateway.db.repository import LeaderboardSettingsRepository

_HISTORY_ADMINS = Rule(Role.ADMIN, scope="xp:admin")


class HistoryPrivate(Forbidden):
    slug = "history-private"
    title = "This XP history is private"


async def history_visibility(sessionmaker: Sessions, community_id: str) -> HistoryVisibility:
    async with sessionmaker() as session:
        stored = await LeaderboardSettingsRepository(session).history_visibility(community_id)
    return cast(HistoryVisibility, stored) if stored else DEFAULT_HISTORY_VISIBILITY


async def require_history_reader(access: Access, sessionmaker: Sessions, user_id: str) -> None:
    """403 (`history-private`) unless the caller may read `user_id`'s history."""
    if access.member_user_id == user_id:
        return
    try:
        permit(access, Action.READ_COMMUNITY, _HISTORY_ADMINS)
    except Forbidden:
        if await history_visibility(sessionmaker, access.community_id) == "members":
            return
        raise HistoryPrivate(
            "a member's XP history is visible to that member and the community's admins; "
            "the owners may show it to every member (history_visibility in the leaderboard "
            "settings)"
        ) from None
