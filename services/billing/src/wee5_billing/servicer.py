"""BillingService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here.

ListPlans, GetEntitlements, GetSubscription and SetCommunityPlan are real; the Stripe RPCs
(checkout, portal, webhooks) are inherited from the generated base class and answer
UNIMPLEMENTED until the billing issue.
"""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.errors import InvalidRequest, UnknownPlan
from wee5_billing.models import CommunityPlan
from wee5_billing.service import ACTIVE, PLANS_BY_KEY, BillingService, Plan
from wee5_kit.logging import bound_contextvars, get_logger

log = get_logger("wee5.billing")


_PLAN_ENUMS: dict[str, billing_pb2.Plan.ValueType] = {
    "free": billing_pb2.PLAN_FREE,
    "premium": billing_pb2.PLAN_PREMIUM,
    "enterprise": billing_pb2.PLAN_ENTERPRISE,
}
_PLAN_KEYS = {value: key for key, value in _PLAN_ENUMS.items()}
_STATUSES: dict[str, billing_pb2.SubscriptionStatus.ValueType] = {
    ACTIVE: billing_pb2.SUBSCRIPTION_STATUS_ACTIVE,
}


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(
        self, service: BillingService, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker

    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> billing_pb2.ListPlansResponse:
        return billing_pb2.ListPlansResponse(
            plans=[
                billing_pb2.PlanInfo(
                    plan=_PLAN_ENUMS[plan.key],
                    name=plan.name,
                    description=plan.description,
                    features=plan.features,
                )
                for plan in self.service.plans()
            ]
        )

    async def GetEntitlements(
        self,
        request: billing_pb2.GetEntitlementsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.GetEntitlementsResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                entitlements = await self.service.entitlements(session, request.community_id)
        return billing_pb2.GetEntitlementsResponse(
            plan=_PLAN_ENUMS[entitlements.plan.key],
            features=entitlements.plan.features,
            status=_STATUSES[entitlements.status],
        )

    async def GetSubscription(
        self,
        request: billing_pb2.GetSubscriptionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.GetSubscriptionResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                assignment = await self.service.assignment(session, request.community_id)
        if assignment is None:
            # Never subscribed nor assigned: implicitly free, and the field stays unset.
            return billing_pb2.GetSubscriptionResponse()
        return billing_pb2.GetSubscriptionResponse(subscription=_subscription(assignment))

    async def SetCommunityPlan(
        self,
        request: billing_pb2.SetCommunityPlanRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.SetCommunityPlanResponse:
        plan_key = _PLAN_KEYS.get(request.plan)
        if plan_key is None:
            raise UnknownPlan()
        if request.HasField("expires_at"):
            raise InvalidRequest(
                "expires_at is not supported yet: an assignment lasts until changed"
            )
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                change = await self.service.set_plan(
                    session,
                    community_id=request.community_id,
                    plan_key=plan_key,
                    assigned_by=request.admin_user_id,
                    reason=request.reason,
                )
            log.info(
                "plan assigned",
                previous_plan=change.previous.key,
                plan=change.plan.key,
                assigned_by=request.admin_user_id,
            )
        return billing_pb2.SetCommunityPlanResponse(
            subscription=_subscription(change.assignment),
            previous_plan=_PLAN_ENUMS[change.previous.key],
        )


def _subscription(assignment: CommunityPlan) -> billing_pb2.Subscription:
    plan: Plan = PLANS_BY_KEY[assignment.plan]
    subscription = billing_pb2.Subscription(
        community_id=assignment.community_id,
        plan=_PLAN_ENUMS[plan.key],
        status=_STATUSES[ACTIVE],
        manual=True,
    )
    subscription.created_at.FromDatetime(assignment.created_at)
    subscription.updated_at.FromDatetime(assignment.updated_at)
    return subscription
