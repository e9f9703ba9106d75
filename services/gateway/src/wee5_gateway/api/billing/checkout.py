"""Stripe Checkout and the Customer Portal for a community's owner, as the JSON routes and the
billing page both start them: one audited call to billing each."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar, cast

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.billing.v1 import billing_pb2
from wee5_gateway.api.billing.schemas import CheckoutRequest, CheckoutStarted, PortalOpened
from wee5_gateway.core.access import Access
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.entitlements import BILLING_INTERVALS, PLANS
from wee5_gateway.core.problems import ProblemError
from wee5_gateway.db.repository import AccountRepository

# Billing's trailing metadata saying why a call failed where the status alone is ambiguous.
REASON_METADATA = "wee5-reason"
STRIPE_NOT_CONFIGURED = "stripe-not-configured"
STRIPE_WEBHOOK_NOT_CONFIGURED = "stripe-webhook-not-configured"
# Billing calls Stripe inside these RPCs (with its own timeout and retries): a longer deadline
# than the default. A retry after a deadline is safe; billing's Stripe writes are idempotent.
STRIPE_RPC_DEADLINE_SECONDS = 20.0

T = TypeVar("T")


class StripeNotConfigured(ProblemError):
    status = 503
    slug = "stripe-not-configured"
    title = "Stripe is not configured"


def billing_reason(error: grpc.aio.AioRpcError) -> str | None:
    """Why billing refused a call, when it says so in the trailing metadata."""
    reasons = dict(cast("tuple[tuple[str, str], ...]", error.trailing_metadata() or ()))
    return reasons.get(REASON_METADATA)


async def stripe_call(call: Awaitable[T]) -> T:
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


async def start_checkout(
    community_id: str,
    data: CheckoutRequest,
    *,
    access: Access,
    sessionmaker: async_sessionmaker[AsyncSession],
    downstream: Downstream,
    audit: Auditor,
    idempotency_key: str | None = None,
) -> CheckoutStarted:
    """A Stripe Checkout session for the community's owner (audited); the plan changes when
    Stripe confirms the payment, not here."""
    # Billing is an owner's business (an account, or a Whop user who owns the company): API
    # keys never pass MANAGE_BILLING. A Whop owner has no email here; Stripe asks for one.
    account_id = access.principal.account_id
    user = None
    if account_id is not None:
        async with sessionmaker() as session:
            user = await AccountRepository(session).user(account_id)
    request = {"plan": data.plan, "interval": data.interval}
    async with audit.change(
        "billing.checkout_started", target=f"community:{community_id}", intent=request
    ) as change:
        reply = await stripe_call(
            downstream.billing.CreateCheckoutSession(
                billing_pb2.CreateCheckoutSessionRequest(
                    community_id=community_id,
                    owner_account_id=access.principal.actor_id,
                    owner_user_id=access.member_user_id or "",
                    owner_email=user.email if user else "",
                    plan=PLANS.value(data.plan),
                    interval=BILLING_INTERVALS.value(data.interval),
                    success_url=data.success_url,
                    cancel_url=data.cancel_url,
                    idempotency_key=idempotency_key or "",
                ),
                timeout=STRIPE_RPC_DEADLINE_SECONDS,
            )
        )
        change.done(after={**request, "session_id": reply.session_id})
    return CheckoutStarted(url=reply.url, session_id=reply.session_id)


async def open_portal(
    community_id: str,
    return_url: str | None,
    *,
    access: Access,
    downstream: Downstream,
    audit: Auditor,
) -> PortalOpened:
    """The Stripe Customer Portal of the owner who pays (audited)."""
    async with audit.change("billing.portal_opened", target=f"community:{community_id}") as change:
        reply = await stripe_call(
            downstream.billing.CreatePortalSession(
                billing_pb2.CreatePortalSessionRequest(
                    community_id=community_id,
                    owner_account_id=access.principal.actor_id,
                    return_url=return_url or "",
                ),
                timeout=STRIPE_RPC_DEADLINE_SECONDS,
            )
        )
        change.done()
    return PortalOpened(url=reply.url)
