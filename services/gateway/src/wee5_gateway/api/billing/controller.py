"""Routes of a community's billing: the public plan catalogue, a community's plan (read by its
owners, set by platform admins), Stripe Checkout and the Customer Portal for its owner, and its
subscription for owners and admins. The Stripe webhook intake is in the webhooks context."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar, cast

import grpc
from litestar import Controller, get, post, put
from litestar.params import FromPath, HeaderParameter, JSONBody

from wee5.billing.v1 import billing_pb2
from wee5_gateway.api.billing import mappers
from wee5_gateway.api.billing.schemas import (
    CheckoutRequest,
    CheckoutStarted,
    CommunityPlan,
    CommunityPlanChange,
    CommunityPlanChanged,
    PlanList,
    PortalOpened,
    PortalRequest,
    SubscriptionView,
)
from wee5_gateway.core.access import Action, requires
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
    EntitlementsDep,
    SessionsDep,
)
from wee5_gateway.core.entitlements import BILLING_INTERVALS, PLANS
from wee5_gateway.core.problems import ProblemError, problem_responses
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


class PlansController(Controller):
    path = "/api/v1/plans"
    tags = ["plans"]

    @get(
        "/",
        operation_id="listPlans",
        summary="The plans a community can be on and what each unlocks (public)",
        responses=problem_responses(503, 504),
    )
    async def list_plans(self, entitlements: EntitlementsDep) -> PlanList:
        return mappers.plan_list(await entitlements.plans())


class CommunityPlanController(Controller):
    path = f"{COMMUNITY}/plan"
    tags = ["plans"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires(Action.READ_BILLING),
        operation_id="getCommunityPlan",
        summary="The community's plan, its features and status (owners and platform admins)",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_plan(
        self, community_id: FromPath[str], entitlements: EntitlementsDep
    ) -> CommunityPlan:
        return mappers.community_plan(await entitlements.of(community_id))

    @put(
        "/",
        opt=requires(Action.SET_PLAN),
        operation_id="setCommunityPlan",
        summary="Assign the community a plan without Stripe (platform admins only; audited)",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def set_plan(
        self,
        community_id: FromPath[str],
        data: JSONBody[CommunityPlanChange],
        access: AccessDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> CommunityPlanChanged:
        reason = data.reason.strip()
        async with audit.change(
            "plan.changed",
            target=f"community:{community_id}",
            intent={"plan": data.plan, "reason": reason},
        ) as change:
            assignment = await entitlements.assign_plan(
                community_id,
                data.plan,
                admin_account_id=str(access.principal.account_id),
                reason=reason,
            )
            change.done(
                before={"plan": assignment.previous_plan},
                after={"plan": assignment.plan, "reason": reason},
            )
        current = await entitlements.of(community_id)
        return CommunityPlanChanged(
            community_id=community_id,
            plan=current.plan,
            features=list(current.features),
            status=current.status,
            previous_plan=assignment.previous_plan,
        )


class BillingController(Controller):
    path = COMMUNITY
    tags = ["billing"]
    security = ACCOUNTS

    @post(
        "/checkout",
        opt=requires(Action.MANAGE_BILLING),
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
        access: AccessDep,
        sessionmaker: SessionsDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=200, required=False)
        ] = None,
    ) -> CheckoutStarted:
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
            reply = await _stripe_call(
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

    @post(
        "/billing-portal",
        opt=requires(Action.MANAGE_BILLING),
        operation_id="openBillingPortal",
        status_code=201,
        summary="Open the Stripe Customer Portal of the owner who pays (owners; audited)",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def open_portal(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
        data: JSONBody[PortalRequest | None] = None,
    ) -> PortalOpened:
        async with audit.change(
            "billing.portal_opened", target=f"community:{community_id}"
        ) as change:
            reply = await _stripe_call(
                downstream.billing.CreatePortalSession(
                    billing_pb2.CreatePortalSessionRequest(
                        community_id=community_id,
                        owner_account_id=access.principal.actor_id,
                        return_url=(data.return_url if data else None) or "",
                    ),
                    timeout=STRIPE_RPC_DEADLINE_SECONDS,
                )
            )
            change.done()
        return PortalOpened(url=reply.url)

    @get(
        "/subscription",
        opt=requires(Action.READ_SUBSCRIPTION),
        operation_id="getCommunitySubscription",
        summary="The community's plan, subscription status, interval and period end (admins)",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def subscription(
        self, community_id: FromPath[str], downstream: DownstreamDep
    ) -> SubscriptionView:
        reply = await downstream.billing.GetSubscription(
            billing_pb2.GetSubscriptionRequest(community_id=community_id)
        )
        return mappers.subscription_view(community_id, reply)
