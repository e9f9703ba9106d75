"""Routes of a community's billing: the public plan catalogue, a community's plan (read by its
owners, set by platform admins), Stripe Checkout and the Customer Portal for its owner, and its
subscription for owners and admins. The Stripe webhook intake is in the webhooks context."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import FromPath, HeaderParameter, JSONBody

from wee5.billing.v1 import billing_pb2
from wee5_gateway.api.billing import mappers
from wee5_gateway.api.billing.checkout import (
    open_portal,
    start_checkout,
)
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
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import problem_responses


class PlansController(Controller):
    path = "/api/v1/plans"
    tags = ["plans"]

    @get(
        "/",
        operation_id="listPlans",
        summary="The plans a community can be on and what each unlocks (public)",
        description="free, premium and enterprise, cheapest first, with the features each unlocks "
        "(each plan includes the ones before it) and their prices (empty until plans "
        "are sold through Stripe). No credentials needed.",
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
        description="The plan in force (a company's enterprise plan covers its communities), the "
        "features it unlocks and its status.",
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
        description="For operators and local trials: the community is on `plan` until changed "
        "again, whatever Stripe says. A reason is required and audited.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def set_plan(
        self,
        community_id: FromPath[str],
        data: Annotated[
            CommunityPlanChange,
            body_example({"plan": "premium", "reason": "trying premium locally"}),
        ],
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
        data: Annotated[
            CheckoutRequest,
            body_example(
                {
                    "plan": "premium",
                    "interval": "monthly",
                    "success_url": "https://example.com/done",
                    "cancel_url": "https://example.com/pricing",
                }
            ),
        ],
        access: AccessDep,
        sessionmaker: SessionsDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=200, required=False)
        ] = None,
    ) -> CheckoutStarted:
        return await start_checkout(
            community_id,
            data,
            access=access,
            sessionmaker=sessionmaker,
            downstream=downstream,
            audit=audit,
            idempotency_key=idempotency_key,
        )

    @post(
        "/billing-portal",
        opt=requires(Action.MANAGE_BILLING),
        operation_id="openBillingPortal",
        status_code=201,
        summary="Open the Stripe Customer Portal of the owner who pays (owners; audited)",
        description="Answers the URL of the Stripe Customer Portal, where the paying owner changes"
        " card, plan or cancels. 409 when the community has no Stripe customer yet.",
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
        return await open_portal(
            community_id,
            data.return_url if data else None,
            access=access,
            downstream=downstream,
            audit=audit,
        )

    @get(
        "/subscription",
        opt=requires(Action.READ_SUBSCRIPTION),
        operation_id="getCommunitySubscription",
        summary="The community's plan, subscription status, interval and period end (admins)",
        description="What billing knows of the community's Stripe subscription: plan, status, "
        "monthly or yearly, and when the current period ends.",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def subscription(
        self, community_id: FromPath[str], downstream: DownstreamDep
    ) -> SubscriptionView:
        reply = await downstream.billing.GetSubscription(
            billing_pb2.GetSubscriptionRequest(community_id=community_id)
        )
        return mappers.subscription_view(community_id, reply)
