"""Whop memberships: which company a community belongs to, and each user's membership there.

A Whop membership belongs to a company, not to one experience, so it is stored per
(company, user) and applies to the user's member record in every community (experience) of
that company. xp learns each community's company from the envelopes its events arrive in.
Rewards need the membership id to apply free days; resources need its status to gate downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from wee5_kit.errors import InvalidArgument, NotFound
from wee5_xp.models import Community, Membership

MAX_ID_LENGTH = 64


class InvalidMembership(InvalidArgument):
    pass


class MembershipNotFound(NotFound):
    def __init__(self, community_id: str, user_id: str) -> None:
        super().__init__(f"no Whop membership is known for {user_id} in community {community_id}")


@dataclass(frozen=True)
class MembershipUpdate:
    company_id: str
    user_id: str
    membership_id: str
    status: str
    active: bool
    updated_at: datetime
    # A community of the company, when the event names one.
    community_id: str | None = None

    def validate(self) -> None:
        for name in ("company_id", "user_id", "membership_id", "status"):
            value = getattr(self, name)
            if not value:
                raise InvalidMembership(f"{name} is required")
            if len(value) > MAX_ID_LENGTH:
                raise InvalidMembership(f"{name} is longer than {MAX_ID_LENGTH} characters")
        if self.updated_at.tzinfo is None:
            raise InvalidMembership("updated_at must carry a time zone")


class Memberships:
    """The rules; the caller commits. Also remembers the community → company pairs it has
    written in this process, so learning them costs one statement per pair, not per event."""

    def __init__(self) -> None:
        self._known_companies: dict[str, str] = {}

    def knows(self, community_id: str, company_id: str) -> bool:
        return self._known_companies.get(community_id) == company_id

    async def learn_company(
        self, session: AsyncSession, community_id: str, company_id: str
    ) -> None:
        """Records that `community_id` belongs to `company_id` (the latest envelope wins)."""
        if not community_id or not company_id or len(company_id) > MAX_ID_LENGTH:
            return
        if self.knows(community_id, company_id):
            return
        statement = insert(Community).values(community_id=community_id, company_id=company_id)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Community.community_id],
                set_={
                    "company_id": statement.excluded.company_id,
                    "updated_at": statement.excluded.updated_at,
                },
                where=Community.company_id != statement.excluded.company_id,
            )
        )

    def remember(self, community_id: str, company_id: str) -> None:
        """Called after the commit that wrote the pair."""
        self._known_companies[community_id] = company_id

    async def apply(
        self, session: AsyncSession, update: MembershipUpdate
    ) -> tuple[Membership, bool]:
        """Stores the update unless a newer one is stored; returns the stored membership and
        whether this update was applied."""
        update.validate()
        if update.community_id:
            await self.learn_company(session, update.community_id, update.company_id)
        statement = insert(Membership).values(
            company_id=update.company_id,
            user_id=update.user_id,
            membership_id=update.membership_id,
            status=update.status,
            active=update.active,
            updated_at=update.updated_at,
        )
        excluded = statement.excluded
        applied = await session.scalar(
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
        stored = await session.scalar(
            select(Membership)
            .where(Membership.company_id == update.company_id)
            .where(Membership.user_id == update.user_id)
            .execution_options(populate_existing=True)
        )
        assert stored is not None
        return stored, applied is not None

    async def of_member(self, session: AsyncSession, community_id: str, user_id: str) -> Membership:
        if not community_id or not user_id:
            raise InvalidMembership("community_id and user_id are required")
        membership = await session.scalar(
            select(Membership)
            .join(Community, Community.company_id == Membership.company_id)
            .where(Community.community_id == community_id)
            .where(Membership.user_id == user_id)
        )
        if membership is None:
            raise MembershipNotFound(community_id, user_id)
        return membership
