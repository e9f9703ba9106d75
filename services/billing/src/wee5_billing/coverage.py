"""Which plan covers a community: its own (an admin's assignment or its Stripe subscription)
and its company's (the same two, held by the company), whichever is dearer (ARCHITECTURE.md §6: a company's
enterprise plan covers all its communities)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wee5_billing.models import ACTIVE, PAST_DUE_STATUSES, CommunityPlan, Subscription
from wee5_billing.plans import DEFAULT_PLAN, Plan, dearer, effective_plan
from wee5_billing.repository import BillingRepository


@dataclass(frozen=True)
class Coverage:
    community_id: str
    assignment: CommunityPlan | None
    own: Subscription | None
    company_id: str | None
    company_subscription: Subscription | None
    # A platform admin's assignment to the company itself.
    company_assignment: CommunityPlan | None = None

    def own_plan(self, now: datetime) -> Plan:
        return effective_plan(self.assignment, self.own, now)

    def company_plan(self, now: datetime) -> Plan:
        if self.company_id is None:
            return DEFAULT_PLAN
        return effective_plan(self.company_assignment, self.company_subscription, now)

    def plan(self, now: datetime) -> Plan:
        return dearer(self.own_plan(now), self.company_plan(now))

    def paying(self, now: datetime) -> Subscription | None:
        """The subscription whose status the community's entitlements show: the company's
        when it gives more than the community's own plan."""
        own, company = self.own_plan(now), self.company_plan(now)
        if self.company_subscription is not None and dearer(own, company) is not own:
            return self.company_subscription
        return self.own

    def status(self, now: datetime) -> tuple[str, datetime | None]:
        row = self.paying(now)
        if row is None:
            return ACTIVE, None
        return row.status, row.grace_until if row.status in PAST_DUE_STATUSES else None


async def coverage_of(repo: BillingRepository, community_id: str) -> Coverage:
    company_id = await repo.company_of(community_id)
    return Coverage(
        community_id=community_id,
        assignment=await repo.get_plan(community_id),
        own=await repo.subscription(community_id),
        company_id=company_id,
        company_subscription=await repo.subscription(company_id) if company_id else None,
        company_assignment=await repo.get_plan(company_id) if company_id else None,
    )
