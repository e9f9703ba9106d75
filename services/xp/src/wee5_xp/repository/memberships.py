"""SQL of Whop memberships and of which company each community belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_xp.models import Community, Membership


class MembershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save_company(self, community_id: str, company_id: str) -> None:
        """Records that `community_id` belongs to `company_id` (the latest write wins)."""
        statement = insert(Community).values(community_id=community_id, company_id=company_id)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[Community.community_id],
                set_={
                    "company_id": statement.excluded.company_id,
                    "updated_at": statement.excluded.updated_at,
                },
                where=Community.company_id != statement.excluded.company_id,
            )
        )

    async def save_membership(
        self,
        *,
        company_id: str,
        user_id: str,
        membership_id: str,
        status: str,
        active: bool,
        updated_at: datetime,
    ) -> bool:
        """Stores the membership unless a newer version is stored; True if it was stored."""
        statement = insert(Membership).values(
            company_id=company_id,
            user_id=user_id,
            membership_id=membership_id,
            status=status,
            active=active,
            updated_at=updated_at,
        )
        excluded = statement.excluded
        applied = await self.session.scalar(
            statement.on_conflict_do_update(
                index_elements=[Membership.company_id, Membership.user_id],
                set_={
                    "membership_id": excluded.membership_id,
                    "status": excluded.status,
                    "active": excluded.active,
                    "updated_at": excluded.updated_at,
                },
                # Redelivered or out-of-order webhooks never move a membership backwards.
                where=Membership.updated_at <= excluded.updated_at,
            ).returning(Membership.user_id)
        )
        return applied is not None

    async def membership(self, company_id: str, user_id: str) -> Membership | None:
        """The stored membership, read afresh."""
        stored: Membership | None = await self.session.scalar(
            select(Membership)
            .where(Membership.company_id == company_id)
            .where(Membership.user_id == user_id)
            .execution_options(populate_existing=True)
        )
        return stored

    async def membership_in_community(self, community_id: str, user_id: str) -> Membership | None:
        """The user's membership in the company the community belongs to."""
        membership: Membership | None = await self.session.scalar(
            select(Membership)
            .join(Community, Community.company_id == Membership.company_id)
            .where(Community.community_id == community_id)
            .where(Membership.user_id == user_id)
        )
        return membership

    async def communities_of_company(self, company_id: str) -> list[str]:
        """The communities known to belong to the company."""
        rows = await self.session.scalars(
            select(Community.community_id)
            .where(Community.company_id == company_id)
            .order_by(Community.community_id)
        )
        return list(rows)
