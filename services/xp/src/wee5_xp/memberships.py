"""Whop memberships: which company a community belongs to, and each user's membership there.

A Whop membership belongs to a company, not to one experience, so it is stored per
(company, user) and applies to the user's member record in every community (experience) of
that company. xp learns each community's company from the envelopes its events arrive in.
Rewards need the membership id to apply free days and its changes (`xp.membership_changed`)
for subscription roles; resources need its status to gate downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_kit.errors import InvalidArgument, NotFound
from wee5_kit.events import Outbox, new_meta
from wee5_kit.proto import to_timestamp
from wee5_kit.uow import UnitOfWork
from wee5_xp.models import Membership
from wee5_xp.profiles import ProfileFields, ProfileUpdate
from wee5_xp.repository import MembershipRepository, ProfileRepository

MAX_ID_LENGTH = 64
COMMUNITY_COMPANY = "xp.community_company"
MEMBERSHIP_CHANGED = "xp.membership_changed"


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
    # What the event says about the user (name, username, avatar), if anything.
    profile: ProfileFields | None = None

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
    """The rules; the caller commits (in a unit of work). Also remembers the community →
    company pairs this process committed, so learning them costs one statement per pair, not
    per event."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        self._known_companies: dict[str, str] = {}
        # Where `xp.community_company` goes (billing learns each community's company from it).
        self.outbox = outbox

    def knows(self, community_id: str, company_id: str) -> bool:
        return self._known_companies.get(community_id) == company_id

    async def learn_company(
        self, session: AsyncSession, community_id: str, company_id: str
    ) -> None:
        """Records that `community_id` belongs to `company_id` (the latest envelope wins) and
        announces it as `xp.community_company`: once per community and process, so a restart
        re-announces what billing may not have heard yet (billing's handling is idempotent)."""
        if not community_id or not company_id or len(company_id) > MAX_ID_LENGTH:
            return
        if self.knows(community_id, company_id):
            return
        await MembershipRepository(session).save_company(community_id, company_id)
        if self.outbox is not None:
            await self.outbox.add(
                session,
                COMMUNITY_COMPANY,
                events_pb2.CommunityCompany(meta=new_meta(community_id), company_id=company_id),
            )
        UnitOfWork.of(session).on_commit(lambda: self._remember(community_id, company_id))

    def _remember(self, community_id: str, company_id: str) -> None:
        self._known_companies[community_id] = company_id

    async def apply(
        self, session: AsyncSession, update: MembershipUpdate
    ) -> tuple[Membership, bool]:
        """Stores the update unless a newer one is stored; returns the stored membership and
        whether this update was applied."""
        update.validate()
        if update.community_id:
            await self.learn_company(session, update.community_id, update.company_id)
        repo = MembershipRepository(session)
        applied = await repo.save_membership(
            company_id=update.company_id,
            user_id=update.user_id,
            membership_id=update.membership_id,
            status=update.status,
            active=update.active,
            updated_at=update.updated_at,
        )
        if update.profile:
            await ProfileRepository(session).save_profiles(
                [ProfileUpdate(update.user_id, update.profile, update.updated_at)]
            )
        stored = await repo.membership(update.company_id, update.user_id)
        assert stored is not None
        if applied:
            await self._announce_change(session, stored)
        return stored, applied

    async def _announce_change(self, session: AsyncSession, membership: Membership) -> None:
        """`xp.membership_changed` for each community of the membership's company (rewards
        gives or takes the subscription role there)."""
        if self.outbox is None:
            return
        communities = await MembershipRepository(session).communities_of_company(
            membership.company_id
        )
        await self.outbox.add_many(
            session,
            [
                (
                    MEMBERSHIP_CHANGED,
                    events_pb2.MembershipChanged(
                        meta=new_meta(community_id),
                        user_id=membership.user_id,
                        company_id=membership.company_id,
                        membership_id=membership.membership_id,
                        status=membership.status,
                        active=membership.active,
                        updated_at=to_timestamp(membership.updated_at),
                    ),
                )
                for community_id in communities
            ],
        )

    async def of_member(self, session: AsyncSession, community_id: str, user_id: str) -> Membership:
        if not community_id or not user_id:
            raise InvalidMembership("community_id and user_id are required")
        membership = await MembershipRepository(session).membership_in_community(
            community_id, user_id
        )
        if membership is None:
            raise MembershipNotFound(community_id, user_id)
        return membership
