"""The plans catalogue: what each plan costs and unlocks, and which plan a community is on.

The plan table below is the one place features are assigned to plans; the gateway learns it
through ListPlans and GetEntitlements.

A community's plan comes from two places: a platform admin's assignment (`community_plans`)
and its Stripe subscription (`subscriptions`); the dearer of the two is in effect. A
subscription unlocks its plan while trialing or active, and while past due until its grace
period ends (`WEE5_BILLING_GRACE_DAYS` after the payment failed); the daily billing checks
then mark it lapsed and announce the drop to free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wee5_billing.errors import UnknownPlan
from wee5_billing.models import PAID_STATUSES, PAST_DUE_STATUSES, CommunityPlan, Subscription


@dataclass(frozen=True)
class ListPrice:
    """What a plan costs per interval, as shown; the Stripe price of the same plan and
    interval (`WEE5_STRIPE_PRICE_…`) is what checkout charges and should match it."""

    interval: str
    amount_minor: int
    currency: str = "usd"


@dataclass(frozen=True)
class Plan:
    """A plan offered to communities: its key, how it is shown, and the features it unlocks."""

    key: str
    name: str
    description: str
    features: tuple[str, ...]
    prices: tuple[ListPrice, ...] = ()

    def has(self, feature: str) -> bool:
        return feature in self.features


_PREMIUM_FEATURES = ("custom_xp_rates", "analytics", "reward_rules", "announcement_templates")

# Cheapest first; each plan unlocks everything the plans before it do (ARCHITECTURE.md §6).
PLANS: tuple[Plan, ...] = (
    Plan("free", "Free", "XP, levels, leaderboards and the default level rewards.", ()),
    Plan(
        "premium",
        "Premium",
        "Custom XP rates, community analytics, your own reward rules and announcement texts.",
        _PREMIUM_FEATURES,
        (ListPrice("monthly", 1900), ListPrice("yearly", 19000)),
    ),
    Plan(
        "enterprise",
        "Enterprise",
        "Everything in Premium, plus badges, several communities under one owner and "
        "analytics across them.",
        (*_PREMIUM_FEATURES, "badges", "multi_community", "cross_community_analytics"),
        (ListPrice("monthly", 9900), ListPrice("yearly", 99000)),
    ),
)
PLANS_BY_KEY = {plan.key: plan for plan in PLANS}
DEFAULT_PLAN = PLANS[0]
PAID_PLANS = tuple(plan.key for plan in PLANS if plan.prices)


def plan_for(key: str) -> Plan:
    plan = PLANS_BY_KEY.get(key)
    if plan is None:
        raise UnknownPlan()
    return plan


def cheapest_plan_with(feature: str) -> Plan | None:
    """The first plan (in price order) that unlocks `feature`; None if no plan does."""
    return next((plan for plan in PLANS if plan.has(feature)), None)


def dearer(a: Plan, b: Plan) -> Plan:
    return a if PLANS.index(a) >= PLANS.index(b) else b


def subscribed_plan(row: Subscription | None, now: datetime) -> Plan | None:
    """The plan a Stripe subscription unlocks at `now`, or None."""
    if row is None or row.lapsed_at is not None:
        return None
    if row.status in PAID_STATUSES:
        return PLANS_BY_KEY[row.plan]
    if row.status in PAST_DUE_STATUSES and row.grace_until is not None and now < row.grace_until:
        return PLANS_BY_KEY[row.plan]
    return None


def effective_plan(
    assignment: CommunityPlan | None, row: Subscription | None, now: datetime
) -> Plan:
    """The plan in effect: the dearer of the assigned one (free without an assignment) and
    the one the Stripe subscription unlocks."""
    assigned = PLANS_BY_KEY[assignment.plan] if assignment else DEFAULT_PLAN
    subscribed = subscribed_plan(row, now)
    return dearer(assigned, subscribed) if subscribed else assigned
