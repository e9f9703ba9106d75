"""BillingService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.errors import (
    InvalidRequest,
    StripeNotConfigured,
    UnknownPlan,
    WebhookNotConfigured,
)
from wee5_billing.models import CommunityPlan, Subscription
from wee5_billing.service import (
    ACTIVE,
    PLANS_BY_KEY,
    BillingService,
    CommunitySubscription,
    Plan,
)
from wee5_billing.stripe_api import verify_event
from wee5_kit.errors import DomainError
from wee5_kit.logging import bound_contextvars, get_logger

log = get_logger("wee5.billing")

# Trailing metadata key naming why a call failed, where the status alone is ambiguous
# (UNAVAILABLE: Stripe is not configured, rather than billing being down).
REASON_METADATA = "wee5-reason"

_PLAN_ENUMS: dict[str, billing_pb2.Plan.ValueType] = {
    "free": billing_pb2.PLAN_FREE,
    "premium": billing_pb2.PLAN_PREMIUM,
    "enterprise": billing_pb2.PLAN_ENTERPRISE,
}
_PLAN_KEYS = {value: key for key, value in _PLAN_ENUMS.items()}
_INTERVAL_ENUMS: dict[str, billing_pb2.BillingInterval.ValueType] = {
    "monthly": billing_pb2.BILLING_INTERVAL_MONTHLY,
    "yearly": billing_pb2.BILLING_INTERVAL_YEARLY,
}
_INTERVAL_KEYS = {value: key for key, value in _INTERVAL_ENUMS.items()}
_STATUSES: dict[str, billing_pb2.SubscriptionStatus.ValueType] = {
    "trialing": billing_pb2.SUBSCRIPTION_STATUS_TRIALING,
    ACTIVE: billing_pb2.SUBSCRIPTION_STATUS_ACTIVE,
    "past_due": billing_pb2.SUBSCRIPTION_STATUS_PAST_DUE,
    "canceled": billing_pb2.SUBSCRIPTION_STATUS_CANCELED,
    "incomplete": billing_pb2.SUBSCRIPTION_STATUS_INCOMPLETE,
    "unpaid": billing_pb2.SUBSCRIPTION_STATUS_UNPAID,
    "paused": billing_pb2.SUBSCRIPTION_STATUS_PAUSED,
    "incomplete_expired": billing_pb2.SUBSCRIPTION_STATUS_INCOMPLETE_EXPIRED,
}


def _now() -> datetime:
    return datetime.now(UTC)


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(
        self,
        service: BillingService,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: BillingSettings,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> billing_pb2.ListPlansResponse:
        plans = []
        for plan in self.service.plans():
            info = billing_pb2.PlanInfo(
                plan=_PLAN_ENUMS[plan.key],
                name=plan.name,
                description=plan.description,
                features=plan.features,
            )
            # Only what can be bought: an interval without a Stripe price is not offered.
            for price in plan.prices:
                price_id = self.service.price_id(plan.key, price.interval)
                if price_id:
                    info.prices.append(
                        billing_pb2.PlanPrice(
                            interval=_INTERVAL_ENUMS[price.interval],
                            amount_minor=price.amount_minor,
                            currency=price.currency,
                            stripe_price_id=price_id,
                        )
                    )
            plans.append(info)
        return billing_pb2.ListPlansResponse(plans=plans)

    async def GetEntitlements(
        self,
        request: billing_pb2.GetEntitlementsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.GetEntitlementsResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                entitlements = await self.service.entitlements(
                    session, request.community_id, _now()
                )
        reply = billing_pb2.GetEntitlementsResponse(
            plan=_PLAN_ENUMS[entitlements.plan.key],
            features=entitlements.plan.features,
            status=_STATUSES[entitlements.status],
        )
        if entitlements.grace_until is not None:
            reply.grace_until.FromDatetime(entitlements.grace_until)
        return reply

    async def GetSubscription(
        self,
        request: billing_pb2.GetSubscriptionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.GetSubscriptionResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                current = await self.service.subscription(session, request.community_id, _now())
        if current.subscription is None and current.assignment is None:
            # Never subscribed nor assigned: implicitly free, and the field stays unset.
            return billing_pb2.GetSubscriptionResponse()
        return billing_pb2.GetSubscriptionResponse(subscription=_community_subscription(current))

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
                    now=_now(),
                )
            log.info(
                "plan assigned",
                previous_plan=change.previous.key,
                plan=change.plan.key,
                assigned_by=request.admin_user_id,
            )
        return billing_pb2.SetCommunityPlanResponse(
            subscription=_assignment(change.assignment, change.effective),
            previous_plan=_PLAN_ENUMS[change.previous.key],
        )

    async def CreateCheckoutSession(
        self,
        request: billing_pb2.CreateCheckoutSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.CreateCheckoutSessionResponse:
        plan_key = _PLAN_KEYS.get(request.plan)
        interval = _INTERVAL_KEYS.get(request.interval)
        if plan_key is None:
            raise UnknownPlan()
        if interval is None:
            raise InvalidRequest("interval must be monthly or yearly")
        with bound_contextvars(community_id=request.community_id):
            try:
                async with self.sessionmaker() as session:
                    plan = await self.service.plan_checkout(
                        session,
                        community_id=request.community_id,
                        owner_account_id=request.owner_account_id,
                        owner_user_id=request.owner_user_id,
                        owner_email=request.owner_email,
                        plan_key=plan_key,
                        interval=interval,
                        success_url=request.success_url,
                        cancel_url=request.cancel_url,
                        idempotency_key=request.idempotency_key,
                        now=_now(),
                    )
            except StripeNotConfigured as error:
                await _abort_with_reason(context, error, error.reason)
            # No transaction is held open while Stripe answers.
            customer_id = plan.customer_id
            if customer_id is None:
                created = await self.service.stripe.create_customer(
                    owner_account_id=plan.owner_account_id, email=plan.owner_email
                )
                async with self.sessionmaker.begin() as session:
                    customer_id = await self.service.keep_customer(
                        session, plan.owner_account_id, created
                    )
            checkout = await self.service.create_checkout(plan, customer_id)
        return billing_pb2.CreateCheckoutSessionResponse(url=checkout.url, session_id=checkout.id)

    async def CreatePortalSession(
        self,
        request: billing_pb2.CreatePortalSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.CreatePortalSessionResponse:
        with bound_contextvars(community_id=request.community_id):
            try:
                async with self.sessionmaker() as session:
                    customer_id = await self.service.portal_customer(
                        session,
                        community_id=request.community_id,
                        owner_account_id=request.owner_account_id,
                        return_url=request.return_url,
                    )
            except StripeNotConfigured as error:
                await _abort_with_reason(context, error, error.reason)
            # No transaction is held open while Stripe answers.
            url = await self.service.stripe.create_portal_session(
                customer_id=customer_id, return_url=request.return_url
            )
        return billing_pb2.CreatePortalSessionResponse(url=url)

    async def HandleStripeWebhook(
        self,
        request: billing_pb2.HandleStripeWebhookRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.HandleStripeWebhookResponse:
        secret = self.settings.stripe_webhook_secret
        try:
            event = verify_event(
                request.payload,
                request.signature_header,
                secret.get_secret_value() if secret else None,
            )
        except WebhookNotConfigured as error:
            await _abort_with_reason(context, error, error.reason)
        with bound_contextvars(stripe_event_id=event.id, event_type=event.type):
            fetched = await self.service.subscription_for_checkout(event)
            async with self.sessionmaker.begin() as session:
                outcome = await self.service.apply_event(
                    session, event, fetched=fetched, now=_now()
                )
        return billing_pb2.HandleStripeWebhookResponse(
            event_id=outcome.event_id,
            event_type=outcome.event_type,
            duplicate=outcome.duplicate,
            community_id=outcome.community_id or "",
        )


async def _abort_with_reason(
    context: grpc.aio.ServicerContext[Any, Any], error: DomainError, reason: str
) -> NoReturn:
    """Aborts with `error`'s status and message, naming `reason` in the trailing metadata."""
    await context.abort(error.status, error.message, trailing_metadata=((REASON_METADATA, reason),))


def _assignment(
    assignment: CommunityPlan, effective: Plan | None = None
) -> billing_pb2.Subscription:
    """A plan a platform admin assigned, shown as a manual subscription."""
    plan: Plan = PLANS_BY_KEY[assignment.plan]
    subscription = billing_pb2.Subscription(
        community_id=assignment.community_id,
        plan=_PLAN_ENUMS[plan.key],
        status=_STATUSES[ACTIVE],
        manual=True,
        effective_plan=_PLAN_ENUMS[(effective or plan).key],
    )
    subscription.created_at.FromDatetime(assignment.created_at)
    subscription.updated_at.FromDatetime(assignment.updated_at)
    return subscription


def _community_subscription(current: CommunitySubscription) -> billing_pb2.Subscription:
    row: Subscription | None = current.subscription
    if row is None:
        assert current.assignment is not None
        return _assignment(current.assignment, current.effective)
    subscription = billing_pb2.Subscription(
        community_id=row.community_id,
        plan=_PLAN_ENUMS[row.plan],
        interval=_INTERVAL_ENUMS[row.interval],
        status=_STATUSES[row.status],
        stripe_customer_id=row.stripe_customer_id,
        stripe_subscription_id=row.stripe_subscription_id,
        owner_user_id=row.owner_user_id,
        owner_account_id=row.owner_account_id,
        cancel_at_period_end=row.cancel_at_period_end,
        manual=False,
        effective_plan=_PLAN_ENUMS[current.effective.key],
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
