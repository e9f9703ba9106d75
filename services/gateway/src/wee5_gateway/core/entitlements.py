"""What a community's plan unlocks, as billing answers it, cached briefly in this process.

billing is the source of truth (ARCHITECTURE.md §6). Every gated route asks `require_feature`,
which reads the community's entitlements from a short in-process cache and asks billing on a
miss. A plan set through this gateway drops the community's entry at once; one set elsewhere
(another replica, later Stripe) shows here within `WEE5_ENTITLEMENTS_CACHE_SECONDS`.

When billing cannot be reached the gate fails closed: the gRPC error propagates and the problem
mapping answers 503 (or 504 on a deadline), never a silently open gate and never a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from litestar.datastructures import State
from litestar.di import NamedDependency

from wee5.billing.v1 import billing_pb2
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.cache import TtlCache
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.problems import PlanRequired
from wee5_kit.proto import EnumCodec

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub

_STATE_KEY = "entitlements"


class Feature(StrEnum):
    """Features the gateway gates, named as billing's plan table names them."""

    CUSTOM_XP_RATES = "custom_xp_rates"
    ANALYTICS = "analytics"
    REWARD_RULES = "reward_rules"
    ANNOUNCEMENT_TEMPLATES = "announcement_templates"
    BADGES = "badges"
    MULTI_COMMUNITY = "multi_community"
    CROSS_COMMUNITY_ANALYTICS = "cross_community_analytics"


PLANS = EnumCodec(billing_pb2.Plan)
SUBSCRIPTION_STATUSES = EnumCodec(billing_pb2.SubscriptionStatus)
BILLING_INTERVALS = EnumCodec(billing_pb2.BillingInterval)
COMPANY_KINDS = EnumCodec(billing_pb2.CompanyKind)


def plan_key(value: billing_pb2.Plan.ValueType) -> str:
    """`PLAN_PREMIUM` -> "premium"; a value this gateway does not know yet -> "unknown"."""
    return PLANS.name_or_none(value) or "unknown"


def status_key(value: billing_pb2.SubscriptionStatus.ValueType) -> str:
    return SUBSCRIPTION_STATUSES.name_or_none(value) or "unknown"


@dataclass(frozen=True)
class CommunityEntitlements:
    community_id: str
    plan: str
    features: tuple[str, ...]
    status: str
    # The community's company (Whop `biz_…` or group `grp_…`) and the plan its subscription
    # gives; `plan` is already the dearer of the community's own and this.
    company_id: str = ""
    company_plan: str = "free"

    def has(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class CompanyEntitlements:
    """What a company's own subscription gives all its communities, and who they are."""

    company_id: str
    # whop (a Whop company, `biz_…`) | group (a WEE5 group, `grp_…`) | unknown (billing has
    # not heard of it)
    kind: str
    plan: str
    features: tuple[str, ...]
    status: str
    community_ids: tuple[str, ...]
    # A group's owner (gateway account id); empty for a Whop company.
    owner_account_id: str
    name: str

    def has(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class Price:
    interval: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class PlanOffer:
    """A plan as billing lists it."""

    plan: str
    # The enum value: billing's plans are numbered cheapest first.
    rank: int
    name: str
    description: str
    features: tuple[str, ...]
    prices: tuple[Price, ...]
    trial_days: int


@dataclass(frozen=True)
class PlanAssignment:
    previous_plan: str
    plan: str


class Entitlements:
    """billing's plans and each community's entitlements, cached for `ttl` seconds."""

    def __init__(
        self,
        billing: BillingServiceAsyncStub,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.billing = billing
        self._communities: TtlCache[str, CommunityEntitlements] = TtlCache(ttl, clock=clock)
        self._plans: TtlCache[None, tuple[PlanOffer, ...]] = TtlCache(ttl, clock=clock)
        self._companies: TtlCache[str, CompanyEntitlements] = TtlCache(ttl, clock=clock)

    async def of(self, community_id: str) -> CommunityEntitlements:
        """The community's plan and features: cached, or asked of billing."""
        cached = self._communities.get(community_id)
        if cached is not None:
            return cached
        generation = self._communities.generation()
        reply = await self.billing.GetEntitlements(
            billing_pb2.GetEntitlementsRequest(community_id=community_id)
        )
        entitlements = CommunityEntitlements(
            community_id=community_id,
            plan=plan_key(reply.plan),
            features=tuple(reply.features),
            status=status_key(reply.status),
            company_id=reply.company_id,
            company_plan=plan_key(reply.company_plan),
        )
        self._communities.put(community_id, entitlements, generation)
        return entitlements

    async def of_company(self, company_id: str) -> CompanyEntitlements:
        """The company's plan, features and communities: cached, or asked of billing. A
        company billing has not heard of is on free, of kind "unknown", with no communities."""
        cached = self._companies.get(company_id)
        if cached is not None:
            return cached
        generation = self._companies.generation()
        reply = await self.billing.GetCompanyEntitlements(
            billing_pb2.GetCompanyEntitlementsRequest(company_id=company_id)
        )
        company = CompanyEntitlements(
            company_id=reply.company_id,
            kind=COMPANY_KINDS.name_or_none(reply.kind) or "unknown",
            plan=plan_key(reply.plan),
            features=tuple(reply.features),
            status=status_key(reply.status),
            community_ids=tuple(reply.community_ids),
            owner_account_id=reply.owner_account_id,
            name=reply.name,
        )
        self._companies.put(company_id, company, generation)
        return company

    async def plans(self) -> tuple[PlanOffer, ...]:
        """Every plan billing offers, cheapest first."""
        cached = self._plans.get(None)
        if cached is not None:
            return cached
        generation = self._plans.generation()
        reply = await self.billing.ListPlans(billing_pb2.ListPlansRequest())
        offers = tuple(
            sorted(
                (
                    PlanOffer(
                        plan=plan_key(info.plan),
                        rank=info.plan,
                        name=info.name,
                        description=info.description,
                        features=tuple(info.features),
                        prices=tuple(
                            Price(
                                interval=BILLING_INTERVALS.name_or_none(price.interval)
                                or "unknown",
                                amount_minor=price.amount_minor,
                                currency=price.currency,
                            )
                            for price in info.prices
                        ),
                        trial_days=info.trial_days,
                    )
                    for info in reply.plans
                ),
                key=lambda offer: offer.rank,
            )
        )
        self._plans.put(None, offers, generation)
        return offers

    async def require_feature(self, community_id: str, feature: Feature) -> CommunityEntitlements:
        """The community's entitlements if its plan includes `feature`; otherwise 402 naming
        the cheapest plan that does."""
        entitlements = await self.of(community_id)
        if entitlements.has(feature):
            return entitlements
        raise await self.plan_required(feature, f"this community is on {entitlements.plan}")

    async def plan_required(self, feature: str, held: str) -> PlanRequired:
        """The 402 of a gate `feature` refused: it names the cheapest plan with it, and what
        the caller holds (`held`, e.g. "this community is on free")."""
        offering = next((offer for offer in await self.plans() if feature in offer.features), None)
        if offering is None:
            return PlanRequired(f"{feature} is not offered on any plan yet")
        return PlanRequired(
            f"{feature} needs the {offering.plan} plan; {held}", required_plan=offering.plan
        )

    async def assign_plan(
        self, community_id: str, plan: str, *, admin_account_id: str, reason: str
    ) -> PlanAssignment:
        """Sets the community's plan in billing and drops what this process cached of it."""
        try:
            reply = await self.billing.SetCommunityPlan(
                billing_pb2.SetCommunityPlanRequest(
                    community_id=community_id,
                    plan=PLANS.value(plan),
                    admin_user_id=admin_account_id,
                    reason=reason,
                )
            )
        finally:
            # Even a failed call may have committed (a deadline that hit after the commit).
            self._communities.invalidate(community_id)
        return PlanAssignment(plan_key(reply.previous_plan), plan_key(reply.subscription.plan))

    def invalidate(self, community_id: str) -> None:
        self._communities.invalidate(community_id)

    def invalidate_company(self, company_id: str) -> None:
        self._companies.invalidate(company_id)


def provide_entitlements(
    state: State,
    downstream: NamedDependency[Downstream],
    settings: NamedDependency[GatewaySettings],
) -> Entitlements:
    """One `Entitlements` per app, made on first use over the app's billing channel."""
    entitlements = state.get(_STATE_KEY)
    if not isinstance(entitlements, Entitlements) or entitlements.billing is not downstream.billing:
        entitlements = Entitlements(downstream.billing, settings.entitlements_cache_seconds)
        state[_STATE_KEY] = entitlements
    return entitlements


def cached_entitlements(state: State) -> Entitlements | None:
    """The app's `Entitlements`, if a request made one yet (nothing is cached before that)."""
    entitlements = state.get(_STATE_KEY)
    return entitlements if isinstance(entitlements, Entitlements) else None


async def company_entitlements(entitlements: Entitlements, company_id: str) -> CompanyEntitlements:
    """What company routes ask: the company's plan (its own subscription), its features
    (`.has(Feature.MULTI_COMMUNITY)`), its communities and, for a group, its owner."""
    return await entitlements.of_company(company_id)
