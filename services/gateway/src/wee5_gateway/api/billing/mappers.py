"""protobuf and billing's answers <-> the billing context's bodies."""

from __future__ import annotations

from collections.abc import Sequence

from wee5.billing.v1 import billing_pb2
from wee5_gateway.api.billing.schemas import (
    CommunityPlan,
    PlanList,
    PlanPrice,
    PlanView,
    SubscriptionView,
)
from wee5_gateway.core.entitlements import (
    BILLING_INTERVALS,
    CommunityEntitlements,
    PlanOffer,
    plan_key,
    status_key,
)
from wee5_kit.proto import timestamp_field


def community_plan(entitlements: CommunityEntitlements) -> CommunityPlan:
    return CommunityPlan(
        community_id=entitlements.community_id,
        plan=entitlements.plan,
        features=list(entitlements.features),
        status=entitlements.status,
    )


def plan_list(offers: Sequence[PlanOffer]) -> PlanList:
    return PlanList(
        plans=[
            PlanView(
                plan=offer.plan,
                name=offer.name,
                description=offer.description,
                features=list(offer.features),
                prices=[
                    PlanPrice(
                        interval=price.interval,
                        amount_minor=price.amount_minor,
                        currency=price.currency,
                    )
                    for price in offer.prices
                ],
                trial_days=offer.trial_days,
            )
            for offer in offers
        ]
    )


def subscription_view(
    community_id: str, reply: billing_pb2.GetSubscriptionResponse
) -> SubscriptionView:
    if not reply.HasField("subscription"):
        return SubscriptionView(
            community_id=community_id, plan="free", source="free", status="active"
        )
    sub = reply.subscription
    if sub.manual:
        return SubscriptionView(
            community_id=community_id,
            plan=plan_key(sub.effective_plan or sub.plan),
            source="manual",
            status=status_key(sub.status),
        )
    return SubscriptionView(
        community_id=community_id,
        plan=plan_key(sub.effective_plan),
        source="stripe",
        status=status_key(sub.status),
        subscribed_plan=plan_key(sub.plan),
        interval=BILLING_INTERVALS.name_or_none(sub.interval),
        current_period_end=timestamp_field(sub, "current_period_end"),
        cancel_at_period_end=sub.cancel_at_period_end,
        grace_until=timestamp_field(sub, "grace_until"),
    )
