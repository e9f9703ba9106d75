"""SQL of member profiles (name, username, avatar per Whop user) and of hiding from boards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import Member, Profile
from wee5_xp.profiles import ProfileFields, ProfileUpdate, merge_updates

members = cast(Table, Member.__table__)
profiles = cast(Table, Profile.__table__)

# Whop user ids; users of other sources (Discord, MEE6 imports) have no Whop profile to fetch.
WHOP_USER_PREFIX = "user_"

# The merge `save_profiles` runs; the award statement (`write_awards`) runs it too, so the
# profiles a batch of activities carries cost no round trip of their own.
SAVE_PROFILES = """
INSERT INTO xp.profiles AS p (user_id, display_name, username, avatar_url, seen_at)
SELECT * FROM unnest(CAST(:prof_u AS varchar[]), CAST(:prof_name AS varchar[]),
                     CAST(:prof_username AS varchar[]), CAST(:prof_avatar AS varchar[]),
                     CAST(:prof_seen AS timestamptz[]))
ON CONFLICT (user_id) DO UPDATE SET
  display_name = CASE WHEN excluded.display_name IS NOT NULL
                       AND (p.display_name IS NULL OR excluded.seen_at >= p.seen_at)
                      THEN excluded.display_name ELSE p.display_name END,
  username = CASE WHEN excluded.username IS NOT NULL
                   AND (p.username IS NULL OR excluded.seen_at >= p.seen_at)
                  THEN excluded.username ELSE p.username END,
  avatar_url = CASE WHEN excluded.avatar_url IS NOT NULL
                     AND (p.avatar_url IS NULL OR excluded.seen_at >= p.seen_at)
                    THEN excluded.avatar_url ELSE p.avatar_url END,
  seen_at = GREATEST(p.seen_at, excluded.seen_at),
  updated_at = now()
WHERE excluded.display_name IS DISTINCT FROM p.display_name
      AND excluded.display_name IS NOT NULL
   OR excluded.username IS DISTINCT FROM p.username AND excluded.username IS NOT NULL
   OR excluded.avatar_url IS DISTINCT FROM p.avatar_url
      AND excluded.avatar_url IS NOT NULL"""
_SAVE_PROFILES = text(SAVE_PROFILES)


def profile_rows(
    updates: Sequence[ProfileUpdate], *, looked_up: bool = False
) -> list[ProfileUpdate]:
    """What `SAVE_PROFILES` writes of `updates` (one per user; see `save_profiles`)."""
    return [u for u in merge_updates(updates) if looked_up or not u.fields.empty]


def profile_params(rows: Sequence[ProfileUpdate]) -> dict[str, list[object]]:
    return {
        "prof_u": [r.user_id for r in rows],
        "prof_name": [r.fields.display_name for r in rows],
        "prof_username": [r.fields.username for r in rows],
        "prof_avatar": [r.fields.avatar_url for r in rows],
        "prof_seen": [r.seen_at for r in rows],
    }


class ProfileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save_profiles(
        self, updates: Sequence[ProfileUpdate], *, looked_up: bool = False
    ) -> None:
        """Merges what sources said into the users' profiles in one statement: a known value
        replaces a stored one unless the stored one was seen later; an unknown one changes
        nothing. Rows change only when a value differs (the award path calls this for every
        batch). `looked_up` also stores users the source knew nothing about, so that the
        refresh does not ask for them again."""
        rows = profile_rows(updates, looked_up=looked_up)
        if rows:
            await self.session.execute(_SAVE_PROFILES, profile_params(rows))

    async def profiles_of(self, user_ids: Sequence[str]) -> dict[str, ProfileFields]:
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(
                profiles.c.user_id,
                profiles.c.display_name,
                profiles.c.username,
                profiles.c.avatar_url,
            ).where(profiles.c.user_id.in_(user_ids))
        )
        return {
            row.user_id: ProfileFields(row.display_name, row.username, row.avatar_url)
            for row in rows
        }

    async def members_named(self, community_id: str, query: str, limit: int) -> list[str]:
        """Members of the community shown on its boards whose display name or username
        contains `query` (case-insensitive, taken literally), most XP first."""
        rows = await self.session.execute(
            select(members.c.user_id)
            .join(profiles, profiles.c.user_id == members.c.user_id)
            .where(
                members.c.community_id == community_id,
                ~members.c.hidden_from_leaderboards,
                or_(
                    profiles.c.display_name.icontains(query, autoescape=True),
                    profiles.c.username.icontains(query, autoescape=True),
                ),
            )
            .order_by(members.c.xp.desc(), members.c.user_id)
            .limit(limit)
        )
        return [row.user_id for row in rows]

    async def users_without_profile(self, limit: int) -> list[str]:
        """Whop users who are members somewhere and whom no source has described yet, most
        recently active first (they are the ones on the boards)."""
        rows = await self.session.execute(
            select(members.c.user_id)
            .where(
                members.c.user_id.startswith(WHOP_USER_PREFIX, autoescape=True),
                ~select(profiles.c.user_id).where(profiles.c.user_id == members.c.user_id).exists(),
            )
            .group_by(members.c.user_id)
            .order_by(func.max(members.c.last_activity_at).desc().nulls_last(), members.c.user_id)
            .limit(limit)
        )
        return [row.user_id for row in rows]

    async def set_hidden(
        self, community_id: str, user_id: str, hidden: bool, first_level: int
    ) -> None:
        """Records the member's choice, creating the member (no XP yet) if new."""
        statement = insert(members).values(
            community_id=community_id,
            user_id=user_id,
            xp=0,
            level=first_level,
            highest_level=first_level,
            messages=0,
            posts=0,
            reactions=0,
            custom=0,
            hidden_from_leaderboards=hidden,
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[members.c.community_id, members.c.user_id],
                set_={"hidden_from_leaderboards": hidden},
            )
        )
