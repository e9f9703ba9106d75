"""SQL of the sync tasks' state: MEE6 links and what each member's MEE6 XP counted for, and
each community's Whop forum cursor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import Community, ForumSync, Mee6Link, Mee6SyncedMember

mee6_links = cast(Table, Mee6Link.__table__)
mee6_members = cast(Table, Mee6SyncedMember.__table__)
forum_syncs = cast(Table, ForumSync.__table__)


class SyncStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def link_mee6(self, community_id: str, guild_id: str) -> None:
        """Links (or relinks) a community to a guild; a new guild starts with a snapshot."""
        statement = insert(mee6_links).values(community_id=community_id, guild_id=guild_id)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[mee6_links.c.community_id],
                set_={"guild_id": guild_id, "synced_at": None},
                where=mee6_links.c.guild_id != guild_id,
            )
        )

    async def unlink_mee6(self, community_id: str) -> bool:
        result = await self.session.execute(
            delete(mee6_links)
            .where(mee6_links.c.community_id == community_id)
            .returning(mee6_links.c.community_id)
        )
        return result.first() is not None

    async def mee6_link(self, community_id: str) -> Mee6Link | None:
        link: Mee6Link | None = await self.session.get(Mee6Link, community_id)
        return link

    async def mee6_links(self) -> list[Mee6Link]:
        return list(await self.session.scalars(select(Mee6Link).order_by(Mee6Link.community_id)))

    async def mark_mee6_synced(self, community_id: str, guild_id: str, when: datetime) -> None:
        await self.session.execute(
            update(mee6_links)
            .where(mee6_links.c.community_id == community_id, mee6_links.c.guild_id == guild_id)
            .values(synced_at=when)
        )

    async def mee6_members(
        self, community_id: str, guild_id: str, user_ids: Sequence[str]
    ) -> dict[str, Mee6SyncedMember]:
        """The members' sync state, locked until the transaction ends."""
        rows = await self.session.scalars(
            select(Mee6SyncedMember)
            .where(
                Mee6SyncedMember.community_id == community_id,
                Mee6SyncedMember.guild_id == guild_id,
                Mee6SyncedMember.user_id.in_(user_ids),
            )
            .with_for_update()
        )
        return {row.user_id: row for row in rows}

    async def save_mee6_member(
        self, community_id: str, guild_id: str, user_id: str, xp_seen: int, xp_counted: int
    ) -> None:
        statement = insert(mee6_members).values(
            community_id=community_id,
            guild_id=guild_id,
            user_id=user_id,
            xp_seen=xp_seen,
            xp_counted=xp_counted,
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[
                    mee6_members.c.community_id,
                    mee6_members.c.guild_id,
                    mee6_members.c.user_id,
                ],
                set_={
                    "xp_seen": statement.excluded.xp_seen,
                    "xp_counted": statement.excluded.xp_counted,
                    "updated_at": func.now(),
                },
            )
        )

    async def forum_sync(self, community_id: str) -> ForumSync | None:
        state: ForumSync | None = await self.session.get(ForumSync, community_id)
        return state

    async def save_forum_sync(
        self,
        community_id: str,
        cursor: str | None,
        recorded: int,
        last_post_at: datetime | None,
        when: datetime,
    ) -> None:
        """Moves the community's cursor on (a page without a cursor keeps the old one)."""
        statement = insert(forum_syncs).values(
            community_id=community_id,
            cursor=cursor,
            posts_recorded=recorded,
            last_post_at=last_post_at,
            synced_at=when,
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[forum_syncs.c.community_id],
                set_={
                    "cursor": func.coalesce(statement.excluded.cursor, forum_syncs.c.cursor),
                    "posts_recorded": forum_syncs.c.posts_recorded + recorded,
                    "last_post_at": func.greatest(
                        forum_syncs.c.last_post_at, statement.excluded.last_post_at
                    ),
                    "synced_at": when,
                },
            )
        )

    async def whop_communities(self) -> list[str]:
        """Communities known to be Whop experiences (learned from webhooks) or synced before."""
        learned = select(Community.community_id).where(Community.community_id.like("exp\\_%"))
        synced = select(ForumSync.community_id)
        rows = await self.session.scalars(learned.union(synced).order_by("community_id"))
        return list(rows)
