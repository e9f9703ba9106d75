"""Billing's domain objects as protobuf messages and back."""

from __future__ import annotations

from collections.abc import Callable

from wee5.billing.v1 import billing_pb2
from wee5_billing.companies import CompanyEntitlements
from wee5_billing.errors import InvalidRequest, UnknownPlan
from wee5_billing.models import ACTIVE, CommunityPlan
from wee5_billing.plans import PLANS_BY_KEY, Plan
from wee5_billing.service import CommunitySubscription, Entitlements
from wee5_kit.proto import EnumCodec, optional_timestamp, to_timestamp

PLANS = EnumCodec(billing_pb2.Plan)
INTERVALS = EnumCodec(billing_pb2.BillingInterval, what="billing interval")
STATUSES = EnumCodec(billing_pb2.SubscriptionStatus)


def plan_of(value: billing_pb2.Plan.ValueType) -> str:
    plan = PLANS.name_or_none(value)
    if plan is None:
        raise UnknownPlan()
    return plan


def interval_of(value: billing_pb2.BillingInterval.ValueType) -> str:
    interval = INTERVALS.name_or_none(value)
    if interval is None:
        raise InvalidRequest("interval must be monthly or yearly")
    return interval


def plan_to_proto(plan: Plan, price_id: Callable[[str, str], str | None]) -> billing_pb2.PlanInfo:
    """A plan as ListPlans shows it: only the intervals with a Stripe price can be bought."""
    prices = [(price, price_id(plan.key, price.interval)) for price in plan.prices]
    return billing_pb2.PlanInfo(
        plan=PLANS.value(plan.key),
        name=plan.name,
        description=plan.description,
        features=plan.features,
        prices=[
            billing_pb2.PlanPrice(
                interval=INTERVALS.value(price.interval),
                amount_minor=price.amount_minor,
                currency=price.currency,
                stripe_price_id=stripe_price_id,
            )
            for price, stripe_price_id in prices
            if stripe_price_id
        ],
    )


def entitlements_to_proto(entitlements: Entitlements) -> billing_pb2.GetEntitlementsResponse:
    return billing_pb2.GetEntitlementsResponse(
        plan=PLANS.value(entitlements.plan.key),
        features=entitlements.plan.features,
        status=STATUSES.value(entitlements.status),
        grace_until=optional_timestamp(entitlements.grace_until),
        company_id=entitlements.company_id or "",
        company_plan=PLANS.value(entitlements.company_plan.key),
    )


COMPANY_KINDS = EnumCodec(billing_pb2.CompanyKind)


def company_entitlements_to_proto(
    company: CompanyEntitlements,
) -> billing_pb2.GetCompanyEntitlementsResponse:
    row = company.subscription
    return billing_pb2.GetCompanyEntitlementsResponse(
        company_id=company.company_id,
        kind=(
            COMPANY_KINDS.value(company.kind)
            if company.kind
            else billing_pb2.COMPANY_KIND_UNSPECIFIED
        ),
        plan=PLANS.value(company.plan.key),
        features=company.plan.features,
        status=STATUSES.value(row.status if row else ACTIVE),
        community_ids=company.community_ids,
        owner_account_id=company.owner_account_id,
        name=company.name,
    )


def assignment_to_proto(
    assignment: CommunityPlan, effective: Plan | None = None
) -> billing_pb2.Subscription:
    """A plan a platform admin assigned, shown as a manual subscription."""
    plan = PLANS_BY_KEY[assignment.plan]
    return billing_pb2.Subscription(
        community_id=assignment.community_id,
        plan=PLANS.value(plan.key),
        status=STATUSES.value(ACTIVE),
        manual=True,
        effective_plan=PLANS.value((effective or plan).key),
        created_at=to_timestamp(assignment.created_at),
        updated_at=to_timestamp(assignment.updated_at),
    )


def subscription_to_proto(current: CommunitySubscription) -> billing_pb2.Subscription:
    """The Stripe subscription, or (without one) the admin's assignment."""
    row = current.subscription
    if row is None:
        assert current.assignment is not None
        return assignment_to_proto(current.assignment, current.effective)
    return billing_pb2.Subscription(
        community_id=row.community_id,
        plan=PLANS.value(row.plan),
        interval=INTERVALS.value(row.interval),
        status=STATUSES.value(row.status),
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        owner_user_id=row.owner_user_id,
        owner_account_id=row.owner_account_id,
        cancel_at_period_end=row.cancel_at_period_end,
        manual=False,
        effective_plan=PLANS.value(current.effective.key),
        current_period_end=optional_timestamp(row.current_period_end),
        trial_end=optional_timestamp(row.trial_end),
        grace_until=optional_timestamp(row.grace_until),
        created_at=optional_timestamp(row.created_at),
        updated_at=optional_timestamp(row.updated_at),
    )
