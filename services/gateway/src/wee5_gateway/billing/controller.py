"""Routes of a community's billing: Stripe Checkout and the Customer Portal for its owner, and
its subscription for owners and admins."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar, cast

import grpc
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.billing.v1 import billing_pb2
from wee5_gateway.access import Action, Principal, authorize
from wee5_gateway.accounts.repository import AccountRepository
from wee5_gateway.audit import record_audit
from wee5_gateway.billing.schemas import (
    CheckoutRequest,
    CheckoutStarted,
    PortalOpened,
    PortalRequest,
    SubscriptionView,
)
from wee5_gateway.clients import Downstream
from wee5_gateway.openapi import BEARER_AUTH, COOKIE_AUTH
from wee5_gateway.problems import ProblemError, problem_responses
from wee5_gateway.tiers.entitlements import PLAN_ENUMS, plan_key, status_key

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "/api/v1/communities/{community_id:str}"
ACCOUNTS: list[dict[str, list[str]]] = [{BEARER_AUTH: []}, {COOKIE_AUTH: []}]
# Billing's trailing metadata saying why a call failed where the status alone is ambiguous.
REASON_METADATA = "wee5-reason"
STRIPE_NOT_CONFIGURED = "stripe-not-configured"
STRIPE_WEBHOOK_NOT_CONFIGURED = "stripe-webhook-not-configured"
# Billing calls Stripe inside these RPCs (with its own timeout and retries): a longer deadline
# than the default. A retry after a deadline is safe; billing's Stripe writes are idempotent.
STRIPE_RPC_DEADLINE_SECONDS = 20.0
_INTERVALS: dict[str, billing_pb2.BillingInterval.ValueType] = {
    "monthly": billing_pb2.BILLING_INTERVAL_MONTHLY,
    "yearly": billing_pb2.BILLING_INTERVAL_YEARLY,
}

T = TypeVar("T")


class StripeNotConfigured(ProblemError):
    status = 503
    slug = "stripe-not-configured"
    title = "Stripe is not configured"


def billing_reason(error: grpc.aio.AioRpcError) -> str | None:
    """Why billing refused a call, when it says so in the trailing metadata."""
    reasons = dict(cast("tuple[tuple[str, str], ...]", error.trailing_metadata() or ()))
    return reasons.get(REASON_METADATA)


async def _stripe_call(call: Awaitable[T]) -> T:
    """A billing call that needs Stripe: "not configured" becomes its own 503 problem (the
    generic one would hide billing's explanation)."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE and (
            billing_reason(error) == STRIPE_NOT_CONFIGURED
        ):
            raise StripeNotConfigured(error.details() or "Stripe is not configured") from None
        raise


def _interval_key(value: billing_pb2.BillingInterval.ValueType) -> str | None:
    if value == billing_pb2.BILLING_INTERVAL_UNSPECIFIED:
        return None
    return billing_pb2.BillingInterval.Name(value).removeprefix("BILLING_INTERVAL_").lower()


class BillingController(Controller):
    path = COMMUNITY
    tags = ["billing"]
    security = ACCOUNTS

    @post(
        "/checkout",
        operation_id="startCheckout",
        status_code=201,
        summary="Start a Stripe Checkout for a paid plan (owners; audited)",
        description=(
            "Answers the Checkout URL to send the owner's browser to. The plan changes when "
            "Stripe confirms the payment (its webhook), not when this answers. Send an "
            "`Idempotency-Key` header to make retries return the same session."
        ),
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def start_checkout(
        self,
        community_id: FromPath[str],
        data: JSONBody[CheckoutRequest],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=200, required=False)
        ] = None,
    ) -> CheckoutStarted:
        access = await authorize(principal, community_id, Action.MANAGE_BILLING, sessionmaker)
        # Billing is an account's business: API keys never pass MANAGE_BILLING.
        assert principal.account_id is not None
        account_id = str(principal.account_id)
        async with sessionmaker() as session:
            user = await AccountRepository(session).user(principal.account_id)
        reply = await _stripe_call(
            downstream.billing.CreateCheckoutSession(
                billing_pb2.CreateCheckoutSessionRequest(
                    community_id=community_id,
                    owner_account_id=account_id,
                    owner_user_id=access.member_user_id or "",
                    owner_email=user.email if user else "",
                    plan=PLAN_ENUMS[data.plan],
                    interval=_INTERVALS[data.interval],
                    success_url=data.success_url,
                    cancel_url=data.cancel_url,
                    idempotency_key=idempotency_key or "",
                ),
                timeout=STRIPE_RPC_DEADLINE_SECONDS,
            )
        )
        async with sessionmaker.begin() as session:
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="billing.checkout_started",
                target=f"community:{community_id}",
                after={
                    "plan": data.plan,
                    "interval": data.interval,
                    "session_id": reply.session_id,
                },
            )
        return CheckoutStarted(url=reply.url, session_id=reply.session_id)

    @post(
        "/billing-portal",
        operation_id="openBillingPortal",
        status_code=201,
        summary="Open the Stripe Customer Portal of the owner who pays (owners; audited)",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def open_portal(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
        data: JSONBody[PortalRequest | None] = None,
    ) -> PortalOpened:
        await authorize(principal, community_id, Action.MANAGE_BILLING, sessionmaker)
        reply = await _stripe_call(
            downstream.billing.CreatePortalSession(
                billing_pb2.CreatePortalSessionRequest(
                    community_id=community_id,
                    owner_account_id=str(principal.account_id),
                    return_url=(data.return_url if data else None) or "",
                ),
                timeout=STRIPE_RPC_DEADLINE_SECONDS,
            )
        )
        async with sessionmaker.begin() as session:
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="billing.portal_opened",
                target=f"community:{community_id}",
            )
        return PortalOpened(url=reply.url)

    @get(
        "/subscription",
        operation_id="getCommunitySubscription",
        summary="The community's plan, subscription status, interval and period end (admins)",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def subscription(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        downstream: NamedDependency[Downstream],
    ) -> SubscriptionView:
        await authorize(principal, community_id, Action.READ_SUBSCRIPTION, sessionmaker)
        reply = await downstream.billing.GetSubscription(
            billing_pb2.GetSubscriptionRequest(community_id=community_id)
        )
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
            interval=_interval_key(sub.interval),
            current_period_end=_time(sub, "current_period_end"),
            cancel_at_period_end=sub.cancel_at_period_end,
            grace_until=_time(sub, "grace_until"),
        )


def _time(
    sub: billing_pb2.Subscription, field: Literal["current_period_end", "grace_until"]
) -> datetime | None:
    if not sub.HasField(field):
        return None
    moment: datetime = getattr(sub, field).ToDatetime(tzinfo=UTC)
    return moment
