"""The plans, what each one unlocks, and which plan a community is on.

The plan table below is the one place features are assigned to plans; the gateway learns it
through ListPlans and GetEntitlements. Functions here work inside the caller's transaction and
never commit (the servicer does).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from wee5.events.v1 import events_pb2
from wee5_billing.errors import CommunityRequired, InvalidRequest, UnknownPlan
from wee5_billing.models import CommunityPlan
from wee5_billing.repository import BillingRepository
from wee5_kit.events import Outbox, new_meta

SUBSCRIPTION_CHANGED = "billing.subscription.changed"
# Until Stripe drives plans, every plan a community is on (assigned or free) is active.
ACTIVE = "active"
MAX_REASON = 500


@dataclass(frozen=True)
class Plan:
    """A plan offered to communities: its key, how it is shown, and the features it unlocks."""

    key: str
    name: str
    description: str
    features: tuple[str, ...]

    def has(self, feature: str) -> bool:
        return feature in self.features


_PREMIUM_FEATURES = ("custom_xp_rates", "analytics", "reward_rules")

# Cheapest first; each plan unlocks everything the plans before it do (ARCHITECTURE.md §6).
PLANS: tuple[Plan, ...] = (
    Plan("free", "Free", "XP, levels, leaderboards and the default level rewards.", ()),
    Plan(
        "premium",
        "Premium",
        "Custom XP rates, community analytics and your own reward rules.",
        _PREMIUM_FEATURES,
    ),
    Plan(
        "enterprise",
        "Enterprise",
        "Everything in Premium, plus badges, several communities under one owner and "
        "analytics across them.",
        (*_PREMIUM_FEATURES, "badges", "multi_community", "cross_community_analytics"),
    ),
)
PLANS_BY_KEY = {plan.key: plan for plan in PLANS}
DEFAULT_PLAN = PLANS[0]


def plan_for(key: str) -> Plan:
    plan = PLANS_BY_KEY.get(key)
    if plan is None:
        raise UnknownPlan()
    return plan


def cheapest_plan_with(feature: str) -> Plan | None:
    """The first plan (in price order) that unlocks `feature`; None if no plan does."""
    return next((plan for plan in PLANS if plan.has(feature)), None)


@dataclass(frozen=True)
class Entitlements:
    community_id: str
    plan: Plan
    status: str


@dataclass(frozen=True)
class PlanChange:
    previous: Plan
    assignment: CommunityPlan

    @property
    def plan(self) -> Plan:
        return PLANS_BY_KEY[self.assignment.plan]


def _require_community(community_id: str) -> None:
    if not community_id or len(community_id) > 64:
        raise CommunityRequired()


class BillingService:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def plans(self) -> tuple[Plan, ...]:
        return PLANS

    async def entitlements(self, session: AsyncSession, community_id: str) -> Entitlements:
        """The community's plan and what it unlocks; free when no plan was ever assigned."""
        _require_community(community_id)
        assignment = await BillingRepository(session).get_plan(community_id)
        plan = PLANS_BY_KEY[assignment.plan] if assignment else DEFAULT_PLAN
        return Entitlements(community_id, plan, ACTIVE)

    async def assignment(self, session: AsyncSession, community_id: str) -> CommunityPlan | None:
        """The plan a platform admin assigned, or None for a community on the implicit free."""
        _require_community(community_id)
        return await BillingRepository(session).get_plan(community_id)

    async def set_plan(
        self,
        session: AsyncSession,
        *,
        community_id: str,
        plan_key: str,
        assigned_by: str,
        reason: str,
    ) -> PlanChange:
        """Assigns `plan_key` to the community and, when that changes its plan, queues
        `billing.subscription.changed` in the same transaction. Setting the plan it is already
        on records who and why, and publishes nothing (a retried call changes nothing twice)."""
        _require_community(community_id)
        plan = plan_for(plan_key)
        if not assigned_by or len(assigned_by) > 64:
            raise InvalidRequest("admin_user_id is required and at most 64 characters")
        if not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidRequest(f"reason is required and at most {MAX_REASON} characters")
        repo = BillingRepository(session)
        previous = PLANS_BY_KEY[await repo.lock_plan(community_id, DEFAULT_PLAN.key, assigned_by)]
        assignment = await repo.assign_plan(community_id, plan.key, assigned_by, reason.strip())
        if plan != previous:
            await self.outbox.add(
                session,
                SUBSCRIPTION_CHANGED,
                events_pb2.SubscriptionChanged(
                    meta=new_meta(community_id), plan=plan.key, status=ACTIVE
                ),
            )
        return PlanChange(previous, assignment)
