"""Billing's domain objects as protobuf messages and back."""

from __future__ import annotations

from collections.abc import Callable

from wee5.billing.v1 import billing_pb2
from wee5_billing.models import ACTIVE, CommunityPlan, Subscription
from wee5_billing.plans import PLANS_BY_KEY, Plan
from wee5_billing.service import CommunitySubscription, Entitlements

PLAN_ENUMS: dict[str, billing_pb2.Plan.ValueType] = {
    "free": billing_pb2.PLAN_FREE,
    "premium": billing_pb2.PLAN_PREMIUM,
    "enterprise": billing_pb2.PLAN_ENTERPRISE,
}
PLANS_BY_ENUM = {value: key for key, value in PLAN_ENUMS.items()}
INTERVAL_ENUMS: dict[str, billing_pb2.BillingInterval.ValueType] = {
    "monthly": billing_pb2.BILLING_INTERVAL_MONTHLY,
    "yearly": billing_pb2.BILLING_INTERVAL_YEARLY,
}
INTERVALS_BY_ENUM = {value: key for key, value in INTERVAL_ENUMS.items()}
STATUS_ENUMS: dict[str, billing_pb2.SubscriptionStatus.ValueType] = {
    "trialing": billing_pb2.SUBSCRIPTION_STATUS_TRIALING,
    ACTIVE: billing_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    "past_due": billing_pb2.SUBSCRIPTION_STATUS_PAST_DUE,
    "canceled": billing_pb2.SUBSCRIPTION_STATUS_CANCELED,
    "incomplete": billing_pb2.SUBSCRIPTION_STATUS_INCOMPLETE,
    "unpaid": billing_pb2.SUBSCRIPTION_STATUS_UNPAID,
    "paused": billing_pb2.SUBSCRIPTION_STATUS_PAUSED,
    "incomplete_expired": billing_pb2.SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED,
}


def plan_to_proto(plan: Plan, price_id: Callable[[str, str], str | None]) -> billing_pb2.PlanInfo:
    """A plan as ListPlans shows it: only the intervals with a Stripe price can be bought."""
    info = billing_pb2.PlanInfo(
        plan=PLAN_ENUMS[plan.key],
        name=plan.name,
        description=plan.description,
        features=plan.features,
    )
    for price in plan.prices:
        stripe_price_id = price_id(plan.key, price.interval)
        if stripe_price_id:
            info.prices.append(
                billing_pb2.PlanPrice(
                    interval=INTERVAL_ENUMS[price.interval],
                    amount_minor=price.amount_minor,
                    currency=price.currency,
                    stripe_price_id=stripe_price_id,
                )
            )
    return info


def entitlements_to_proto(entitlements: Entitlements) -> billing_pb2.GetEntitlementsResponse:
    reply = billing_pb2.GetEntitlementsResponse(
        plan=PLAN_ENUMS[entitlements.plan.key],
        features=entitlements.plan.features,
        status=STATUS_ENUMS[entitlements.status],
    )
    if entitlements.grace_until is not None:
        reply.grace_until.FromDatetime(entitlements.grace_until)
    return reply


def assignment_to_proto(
    assignment: CommunityPlan, effective: Plan | None = None
) -> billing_pb2.Subscription:
    """A plan a platform admin assigned, shown as a manual subscription."""
    plan: Plan = PLANS_BY_KEY[assignment.plan]
    subscription = billing_pb2.Subscription(
        community_id=assignment.community_id,
        plan=PLAN_ENUMS[plan.key],
        status=STATUS_ENUMS[ACTIVE],
        manual=True,
        effective_plan=PLAN_ENUMS[(effective or plan).key],
    )
    subscription.created_at.FromDatetime(assignment.created_at)
    subscription.updated_at.FromDatetime(assignment.updated_at)
    return subscription


def subscription_to_proto(current: CommunitySubscription) -> billing_pb2.Subscription:
    row: Subscription | None = current.subscription
    if row is None:
        assert current.assignment is not None
        return assignment_to_proto(current.assignment, current.effective)
    subscription = billing_pb2.Subscription(
        community_id=row.community_id,
        plan=PLAN_ENUMS[row.plan],
        interval=INTERVAL_ENUMS[row.interval],
        status=STATUS_ENUMS[row.status],
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        owner_user_id=row.owner_user_id,
        owner_account_id=row.owner_account_id,
        cancel_at_period_end=row.cancel_at_period_end,
        manual=False,
        effective_plan=PLAN_ENUMS[current.effective.key],
    )
    for field, moment in (
        ("current_period_end", row.current_period_end),
        ("trial_end", row.trial_end),
        ("grace_until", row.grace_until),
        ("created_at", row.created_at),
        ("updated_at", row.updated_at),
    ):
        if moment is not None:
            getattr(subscription, field).FromDatetime(moment)
    return subscription
