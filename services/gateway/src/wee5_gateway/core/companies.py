"""Companies: the Whop company (`biz_…`) several communities belong to, as xp learned it from
webhook envelopes, and what the company's plan unlocks.

What a company may use is its own plan, held in billing (`core.entitlements.company_entitlements`):
a company's enterprise subscription covers all its communities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from litestar.datastructures import State

from wee5.xp.v1 import xp_pb2
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.cache import TtlCache
from wee5_gateway.core.entitlements import (
    CompanyEntitlements,
    Entitlements,
    Feature,
    company_entitlements,
)

if TYPE_CHECKING:
    from wee5.xp.v1.xp_pb2_grpc import XpServiceAsyncStub

COMPANY = "/api/v1/companies/{company_id:str}"
_STATE_KEY = "wee5.companies"
MAX_CACHED_COMPANIES = 10_000


@dataclass(frozen=True)
class CompanyCommunity:
    community_id: str
    in_company_board: bool


class Companies:
    """The communities xp knows of each company, cached for `ttl` seconds (as entitlements)."""

    def __init__(self, xp: XpServiceAsyncStub, ttl: float) -> None:
        self.xp = xp
        self._communities: TtlCache[str, tuple[CompanyCommunity, ...]] = TtlCache(
            ttl, max_entries=MAX_CACHED_COMPANIES
        )

    async def communities(self, company_id: str) -> tuple[CompanyCommunity, ...]:
        cached = self._communities.get(company_id)
        if cached is not None:
            return cached
        generation = self._communities.generation()
        reply = await self.xp.GetCompany(xp_pb2.GetCompanyRequest(company_id=company_id))
        communities = tuple(
            CompanyCommunity(c.community_id, c.in_company_board) for c in reply.communities
        )
        self._communities.put(company_id, communities, generation)
        return communities

    def invalidate(self, company_id: str) -> None:
        """After a community's opt-in changed through this process."""
        self._communities.invalidate(company_id)


def provide_companies(state: State) -> Companies:
    """One `Companies` per app, made on first use over the app's xp channel."""
    companies = state.get(_STATE_KEY)
    xp = state.downstream.xp
    if not isinstance(companies, Companies) or companies.xp is not xp:
        settings = cast(GatewaySettings, state.settings)
        companies = Companies(xp, settings.entitlements_cache_seconds)
        state[_STATE_KEY] = companies
    return companies


async def require_company_feature(
    entitlements: Entitlements, company_id: str, feature: Feature
) -> CompanyEntitlements:
    """The company's entitlements (its own plan, from billing) if they include `feature`;
    otherwise 402 naming the cheapest plan that does."""
    held = await company_entitlements(entitlements, company_id)
    if held.has(feature):
        return held
    raise await entitlements.plan_required(feature, f"the company is on {held.plan}")
