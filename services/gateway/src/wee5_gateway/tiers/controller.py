"""Routes of plans: the public catalogue, a community's plan (read by its owners, set by
platform admins), and analytics, the first route gated by plan."""

from __future__ import annotations

from datetime import UTC, date, datetime

from litestar import Controller, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2
from wee5_gateway.access import Action, Principal, authorize
from wee5_gateway.audit import record_audit
from wee5_gateway.clients import Downstream
from wee5_gateway.openapi import API_KEY_AUTH, BEARER_AUTH, COOKIE_AUTH
from wee5_gateway.problems import ProblemError, problem_responses
from wee5_gateway.tiers.entitlements import (
    CommunityEntitlements,
    Entitlements,
    Feature,
    provide_entitlements,
)
from wee5_gateway.tiers.schemas import (
    Analytics,
    CommunityPlan,
    CommunityPlanChange,
    CommunityPlanChanged,
    DailyActivity,
    Mover,
    PlanList,
    PlanPrice,
    PlanView,
)

Sessions = async_sessionmaker[AsyncSession]
COMMUNITY = "/api/v1/communities/{community_id:str}"
# Plans are an account's business (owners, platform admins); analytics also take API keys.
ACCOUNTS: list[dict[str, list[str]]] = [{BEARER_AUTH: []}, {COOKIE_AUTH: []}]
ACCOUNTS_OR_KEYS: list[dict[str, list[str]]] = [*ACCOUNTS, {API_KEY_AUTH: []}]
ENTITLEMENTS = {"entitlements": Provide(provide_entitlements, sync_to_thread=False)}


def _community_plan(entitlements: CommunityEntitlements) -> CommunityPlan:
    return CommunityPlan(
        community_id=entitlements.community_id,
        plan=entitlements.plan,
        features=list(entitlements.features),
        status=entitlements.status,
    )


class PlansController(Controller):
    path = "/api/v1/plans"
    tags = ["plans"]
    dependencies = ENTITLEMENTS

    @get(
        "/",
        operation_id="listPlans",
        summary="The plans a community can be on and what each unlocks (public)",
        responses=problem_responses(503, 504),
    )
    async def list_plans(self, entitlements: NamedDependency[Entitlements]) -> PlanList:
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
                for offer in await entitlements.plans()
            ]
        )


class CommunityPlanController(Controller):
    path = f"{COMMUNITY}/plan"
    tags = ["plans"]
    security = ACCOUNTS
    dependencies = ENTITLEMENTS

    @get(
        "/",
        operation_id="getCommunityPlan",
        summary="The community's plan, its features and status (owners and platform admins)",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_plan(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        entitlements: NamedDependency[Entitlements],
    ) -> CommunityPlan:
        await authorize(principal, community_id, Action.READ_BILLING, sessionmaker)
        return _community_plan(await entitlements.of(community_id))

    @put(
        "/",
        operation_id="setCommunityPlan",
        summary="Assign the community a plan without Stripe (platform admins only; audited)",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def set_plan(
        self,
        community_id: FromPath[str],
        data: JSONBody[CommunityPlanChange],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        entitlements: NamedDependency[Entitlements],
    ) -> CommunityPlanChanged:
        await authorize(principal, community_id, Action.SET_PLAN, sessionmaker)
        reason = data.reason.strip()
        # billing commits first: the audit log never records a change that did not happen.
        assignment = await entitlements.assign_plan(
            community_id, data.plan, admin_account_id=str(principal.account_id), reason=reason
        )
        async with sessionmaker.begin() as session:
            await record_audit(
                session,
                principal,
                community_id=community_id,
                action="plan.changed",
                target=f"community:{community_id}",
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


class AnalyticsController(Controller):
    path = f"{COMMUNITY}/analytics"
    tags = ["analytics"]
    security = ACCOUNTS_OR_KEYS
    dependencies = ENTITLEMENTS

    @get(
        "/",
        operation_id="getCommunityAnalytics",
        summary="Per UTC day: activities (by kind), XP, active and new members, level-ups; "
        "and the window's top movers (admins; premium plan)",
        description=(
            "The window is [since, until): until defaults to now, since to the start of the UTC "
            "day 29 days before, and it spans at most 366 days. Times without a zone are UTC."
        ),
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def analytics(
        self,
        community_id: FromPath[str],
        principal: NamedDependency[Principal],
        sessionmaker: NamedDependency[Sessions],
        entitlements: NamedDependency[Entitlements],
        downstream: NamedDependency[Downstream],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Analytics:
        await authorize(principal, community_id, Action.READ_ANALYTICS, sessionmaker)
        await entitlements.require_feature(community_id, Feature.ANALYTICS)
        request = xp_pb2.GetAnalyticsRequest(community_id=community_id)
        try:
            if since is not None:
                request.since.FromDatetime(_utc(since))
            if until is not None:
                request.until.FromDatetime(_utc(until))
        except (OverflowError, ValueError):
            raise ProblemError(
                "since and until must be times between the years 1 and 9999"
            ) from None
        reply = await downstream.xp.GetAnalytics(request)
        return Analytics(
            community_id=community_id,
            days=[
                DailyActivity(
                    day=date.fromisoformat(day.day),
                    activities=day.activities,
                    xp=day.xp,
                    active_members=day.active_members,
                    activities_by_kind=dict(day.activities_by_kind),
                    new_members=day.new_members,
                    level_ups=day.level_ups,
                )
                for day in reply.days
            ],
            top_movers=[Mover(user_id=m.user_id, xp=m.xp) for m in reply.top_movers],
        )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
