"""Companies: several communities under one owner, whose subscription covers them all.

A community belongs to at most one company:
- a Whop company (`biz_…`): xp learns it from Whop's signed webhook envelopes and announces
  it as `xp.community_company`, which billing consumes here. No caller can set it.
- a WEE5 group (`grp_…`): an owner creates one for communities outside Whop and puts
  communities in it (the gateway checks they own the community; billing that they own the
  group). A community of a Whop company cannot join a group; when xp learns that a community
  of a group belongs to a Whop company, Whop wins. Each join and leave is announced as
  `billing.community_group` in the same transaction: xp keeps the group as the community's
  company (its company boards and analytics), as it keeps a Whop company.

When a community joins a company that holds no live subscription, the community's own live
enterprise subscription becomes the company's (the migration of per-community enterprise
subscriptions, done as each community's company becomes known; the `company-plans` task does
it for every link at once). Every change of what covers a community is announced as
`billing.subscription.changed` for it, which drops the gateways' cached entitlements.

Functions here work inside the caller's transaction and never commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_billing.errors import (
    CommunityRequired,
    GroupNotFound,
    InvalidRequest,
    InWhopCompany,
    NotTheGroupOwner,
)
from wee5_billing.models import COMPANY, Company, Subscription, SubscriptionChange
from wee5_billing.plans import Plan, effective_plan, subscribed_plan
from wee5_billing.repository import BillingRepository
from wee5_billing.subscription_changes import SubscriptionChanges, subscription_state
from wee5_kit.communities import GROUP_PREFIX, is_community_id, is_group_id
from wee5_kit.events import new_meta
from wee5_kit.logging import get_logger

log = get_logger("wee5.billing")

WHOP, GROUP = "whop", "group"
COMMUNITY_GROUP = "billing.community_group"
MAX_NAME = 100
# The plan a company's subscription moves from a community to its company.
COMPANY_PLAN = "enterprise"


@dataclass(frozen=True)
class CompanyEntitlements:
    company_id: str
    # whop | group; empty for a company billing has not heard of
    kind: str
    name: str
    owner_account_id: str
    plan: Plan
    subscription: Subscription | None
    community_ids: tuple[str, ...]


def _require_company(company_id: str) -> None:
    if not is_community_id(company_id):
        raise InvalidRequest("company_id is required: 1-64 letters, digits, '_' or '-'")


class Companies:
    def __init__(self, changes: SubscriptionChanges) -> None:
        self.changes = changes

    # --- Whop companies (from xp) --------------------------------------------------------

    async def learn_whop_company(
        self,
        session: AsyncSession,
        community_id: str,
        company_id: str,
        learned_at: datetime,
        now: datetime,
    ) -> bool:
        """Records that the community belongs to the Whop company (as xp learned it at
        `learned_at`); True if that changed. An event older than the Whop link stored is
        stale (a redelivery after a newer one) and changes nothing."""
        if not is_community_id(community_id) or not is_community_id(company_id):
            log.warning("xp named an invalid community or company", company_id=company_id[:64])
            return False
        repo = BillingRepository(session)
        await repo.lock_subscription(community_id)
        link = await repo.company_link(community_id)
        if link is not None and link.learned_at is not None and link.learned_at > learned_at:
            log.info("stale company of a community ignored", company_id=company_id)
            return False
        await repo.add_company(company_id, WHOP, "", "")
        return await self._join(session, community_id, company_id, now, learned_at)

    # --- WEE5 groups ---------------------------------------------------------------------

    async def create_group(
        self, session: AsyncSession, owner_account_id: str, name: str
    ) -> Company:
        if not owner_account_id or len(owner_account_id) > 64:
            raise InvalidRequest("owner_account_id is required and at most 64 characters")
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidRequest(f"name is required and at most {MAX_NAME} characters")
        group_id = GROUP_PREFIX + secrets.token_hex(12)
        repo = BillingRepository(session)
        await repo.add_company(group_id, GROUP, owner_account_id, name)
        group = await repo.company(group_id)
        assert group is not None
        return group

    async def set_group_community(
        self,
        session: AsyncSession,
        *,
        group_id: str,
        community_id: str,
        owner_account_id: str,
        member: bool,
        now: datetime,
    ) -> bool:
        """Puts the community into the group (or takes it out); True if that changed
        anything. Only the group's owner may; the caller checked they own the community."""
        if not is_community_id(community_id):
            raise CommunityRequired()
        _require_company(group_id)
        repo = BillingRepository(session)
        group = await repo.company(group_id)
        if group is None or group.kind != GROUP:
            raise GroupNotFound()
        if not owner_account_id or group.owner_account_id != owner_account_id:
            raise NotTheGroupOwner()
        await repo.lock_subscription(community_id)
        current = await repo.company_of(community_id)
        if member:
            if current is not None and current != group_id:
                joined = await repo.company(current)
                if joined is not None and joined.kind == WHOP:
                    raise InWhopCompany(current)
            joined_now = await self._join(session, community_id, group_id, now, None)
            if joined_now:
                await self._announce_group(session, community_id, group_id)
            return joined_now
        if current != group_id:
            return False
        await repo.unlink_company(community_id)
        await self.changes.announce(session, community_id, now, left=group_id)
        await self._announce_group(session, community_id, "")
        log.info("community left its company", company_id=group_id, community_id=community_id)
        return True

    async def _announce_group(
        self, session: AsyncSession, community_id: str, group_id: str
    ) -> None:
        """Queues `billing.community_group`: the community's group now ('' when it left one).
        Its time (taken under the community's lock) orders it after the community's earlier
        changes, so xp never lets an older one win."""
        event = events_pb2.CommunityGroup(meta=new_meta(community_id), group_id=group_id)
        await self.changes.outbox.add(session, COMMUNITY_GROUP, event)

    async def announce_groups(self, session: AsyncSession) -> int:
        """Announces every community's group again (`billing.community_group`), each under
        its community's lock so it is newer than any change before it: xp learns groups made
        before it consumed these events. Returns how many were announced."""
        repo = BillingRepository(session)
        announced = 0
        for community_id, company_id in await repo.company_links():
            if not is_group_id(company_id):
                continue
            await repo.lock_subscription(community_id)
            if await repo.company_of(community_id) == company_id:
                await self._announce_group(session, community_id, company_id)
                announced += 1
        return announced

    # --- reading -------------------------------------------------------------------------

    async def entitlements(
        self, session: AsyncSession, company_id: str, now: datetime
    ) -> CompanyEntitlements:
        """What the company's own plan gives: its subscription, or a platform admin's
        assignment to it, whichever is dearer. A company billing has not heard of (yet: xp's
        event may be on its way) has no kind and no communities; only an assignment gives it
        more than free."""
        _require_company(company_id)
        repo = BillingRepository(session)
        company = await repo.company(company_id)
        row = await repo.subscription(company_id)
        return CompanyEntitlements(
            company_id=company_id,
            kind=company.kind if company else "",
            name=company.name if company else "",
            owner_account_id=company.owner_account_id if company else "",
            plan=effective_plan(await repo.get_plan(company_id), row, now),
            subscription=row,
            community_ids=tuple(await repo.communities_of(company_id)),
        )

    # --- joining and the move of enterprise subscriptions ----------------------------------

    async def _join(
        self,
        session: AsyncSession,
        community_id: str,
        company_id: str,
        now: datetime,
        learned_at: datetime | None,
    ) -> bool:
        repo = BillingRepository(session)
        previous = await repo.company_of(community_id)
        if previous == company_id:
            if learned_at is not None:
                await repo.link_company(community_id, company_id, learned_at)
            return False
        await repo.link_company(community_id, company_id, learned_at)
        await self.move_enterprise_to_company(session, community_id, company_id, now)
        await self.changes.announce(session, community_id, now)
        if previous is not None:
            # The company it left has one community fewer (its cached list is dropped).
            await self.changes.announce(session, community_id, now, left=previous)
        log.info("community joined a company", company_id=company_id, community_id=community_id)
        return True

    async def move_enterprise_to_company(
        self, session: AsyncSession, community_id: str, company_id: str, now: datetime
    ) -> bool:
        """Makes the community's own live enterprise subscription its company's, when the
        company holds no live subscription (one subscription per company). True if moved.
        The history of both records the move, and each community of the company hears of it."""
        repo = BillingRepository(session)
        own = await repo.lock_subscription(community_id)
        if own is None or own.plan != COMPANY_PLAN or subscribed_plan(own, now) is None:
            return False
        held = await repo.lock_subscription(company_id)
        if held is not None:
            if subscribed_plan(held, now) is not None:
                return False
            # The company's old subscription is over: the moving one takes its place.
            await repo.drop_subscription(held)
        before = subscription_state(own, effective_plan(None, own, now))
        await repo.move_subscription(own, company_id, COMPANY, community_id)
        for holder_id in (community_id, company_id):
            await repo.add_change(
                SubscriptionChange(
                    community_id=holder_id,
                    source="company",
                    stripe_event_id=None,
                    reason=f"moved from community {community_id} to its company {company_id}",
                    before=before if holder_id == community_id else None,
                    after=before,
                )
            )
        # Every community of the company is covered by it now.
        await self.changes.announce_holder(session, own, now)
        log.info(
            "enterprise subscription moved to the company",
            company_id=company_id,
            community_id=community_id,
            stripe_subscription_id=own.stripe_subscription_id,
        )
        return True

    async def move_all(self, session: AsyncSession, now: datetime) -> list[dict[str, str]]:
        """The migration for every known link: each community's live enterprise subscription
        moves to its company when the company has none. Returns what moved."""
        moved = []
        for community_id, company_id in await BillingRepository(session).company_links():
            if await self.move_enterprise_to_company(session, community_id, company_id, now):
                moved.append({"community_id": community_id, "company_id": company_id})
        return moved
