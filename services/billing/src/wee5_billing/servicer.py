"""BillingService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.companies import Companies
from wee5_billing.config import BillingSettings
from wee5_billing.errors import (
    InvalidRequest,
    StripeNotConfigured,
    WebhookNotConfigured,
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
)
from wee5_billing.mappers import (
    PLANS,
    assignment_to_proto,
    company_entitlements_to_proto,
    entitlements_to_proto,
    interval_of,
    plan_of,
    plan_to_proto,
    subscription_to_proto,
)
from wee5_billing.metrics import count_stripe_event
from wee5_billing.service import BillingService, CheckoutRequest
from wee5_billing.stripe_api import verify_event
from wee5_billing.stripe_events import StripeEvents
from wee5_kit.errors import DomainError
from wee5_kit.logging import bound_contextvars, get_logger

log = get_logger("wee5.billing")

# Trailing metadata key naming why a call failed, where the status alone is ambiguous
# (UNAVAILABLE: Stripe is not configured, rather than billing being down).
REASON_METADATA = "wee5-reason"


def _now() -> datetime:
    return datetime.now(UTC)


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(
        self,
        service: BillingService,
        stripe_events: StripeEvents,
        companies: Companies,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: BillingSettings,
    ) -> None:
        self.service = service
        self.stripe_events = stripe_events
        self.companies = companies
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> billing_pb2.ListPlansResponse:
        # Only what can be bought: an interval without a Stripe price is not offered.
        plans = [plan_to_proto(plan, self.service.price_id) for plan in self.service.plans()]
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
        return entitlements_to_proto(entitlements)

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
        return billing_pb2.GetSubscriptionResponse(subscription=subscription_to_proto(current))

    async def SetCommunityPlan(
        self,
        request: billing_pb2.SetCommunityPlanRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.SetCommunityPlanResponse:
        plan_key = plan_of(request.plan)
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
            subscription=assignment_to_proto(change.assignment, change.effective),
            previous_plan=PLANS.value(change.previous.key),
        )

    async def CreateCheckoutSession(
        self,
        request: billing_pb2.CreateCheckoutSessionRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.CreateCheckoutSessionResponse:
        plan_key = plan_of(request.plan)
        interval = interval_of(request.interval)
        with bound_contextvars(community_id=request.community_id):
            try:
                async with self.sessionmaker() as session:
                    plan = await self.service.plan_checkout(
                        session,
                        CheckoutRequest(
                            community_id=request.community_id,
                            owner_account_id=request.owner_account_id,
                            owner_user_id=request.owner_user_id,
                            owner_email=request.owner_email,
                            plan_key=plan_key,
                            interval=interval,
                            success_url=request.success_url,
                            cancel_url=request.cancel_url,
                            idempotency_key=request.idempotency_key,
                        ),
                        _now(),
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

    async def CreateGroup(
        self, request: billing_pb2.CreateGroupRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> billing_pb2.CreateGroupResponse:
        async with self.sessionmaker.begin() as session:
            group = await self.companies.create_group(
                session, request.owner_account_id, request.name
            )
        log.info("group created", company_id=group.company_id)
        return billing_pb2.CreateGroupResponse(group_id=group.company_id, name=group.name)

    async def SetGroupCommunity(
        self,
        request: billing_pb2.SetGroupCommunityRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.SetGroupCommunityResponse:
        with bound_contextvars(community_id=request.community_id, company_id=request.group_id):
            async with self.sessionmaker.begin() as session:
                changed = await self.companies.set_group_community(
                    session,
                    group_id=request.group_id,
                    community_id=request.community_id,
                    owner_account_id=request.owner_account_id,
                    member=request.member,
                    now=_now(),
                )
        return billing_pb2.SetGroupCommunityResponse(changed=changed)

    async def GetCompanyEntitlements(
        self,
        request: billing_pb2.GetCompanyEntitlementsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> billing_pb2.GetCompanyEntitlementsResponse:
        async with self.sessionmaker() as session:
            company = await self.companies.entitlements(session, request.company_id, _now())
        return company_entitlements_to_proto(company)

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
            count_stripe_event(None, "not_configured")
            await _abort_with_reason(context, error, error.reason)
        except WebhookSignatureInvalid:
            count_stripe_event(None, "bad_signature")
            raise
        except WebhookPayloadInvalid:
            count_stripe_event(None, "bad_payload")
            raise
        with bound_contextvars(stripe_event_id=event.id, event_type=event.type):
            fetched = await self.stripe_events.subscription_for_checkout(event)
            async with self.sessionmaker.begin() as session:
                outcome = await self.stripe_events.apply_event(
                    session, event, fetched=fetched, now=_now()
                )
        count_stripe_event(event.type, outcome.outcome)
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
