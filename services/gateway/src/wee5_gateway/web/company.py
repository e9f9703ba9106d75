"""The company view (issue 20): for a company's admins on enterprise, its communities with
their numbers for the last 30 days and links to each one's dashboard, the company board, the
charts across the communities and the CSV of it all. In Whop at `/dashboard/{company_id}/company`,
outside Whop at `/app/companies/{company_id}`.

The page declares the JSON routes' action (`READ_COMPANY`, checked by the guard with
`access_in_company`), checks the same plan gate (`require_company_feature`) and reads through
the same functions (`company_analytics`, `company_board`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

import grpc
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from markupsafe import Markup

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.companies import mappers
from wee5_gateway.api.companies.controller import company_board, provide_company_reads
from wee5_gateway.api.companies.schemas import CompanyLeaderboard, Period
from wee5_gateway.api.xp.company_analytics import CompanyAnalytics, company_analytics
from wee5_gateway.core.access import (
    WHOP_COMMUNITIES_STATE,
    Action,
    Principal,
    Role,
    access_in_company,
    requires_company,
)
from wee5_gateway.core.access_cache import provide_access_cache
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.companies import provide_companies, require_company_feature
from wee5_gateway.core.deps import DownstreamDep, EntitlementsDep, SessionsDep
from wee5_gateway.core.entitlements import Entitlements, Feature
from wee5_gateway.core.problems import PlanRequired
from wee5_gateway.core.whop_access import WhopAccessUnavailable, WhopCommunities
from wee5_gateway.db.repository import WhopRepository
from wee5_gateway.web.charts.series import line_chart
from wee5_gateway.web.dashboard import company_communities
from wee5_gateway.web.experience import MEDALS, PERIOD_TABS, link
from wee5_gateway.web.page import Page

BOARD_ROWS = 25
# The board's element id: its period tabs swap only it.
BOARD_ID = "company-board"
WHOP_COMPANY_PREFIX = "biz_"
# A legend entry is 100 px of the chart's 480 (its text about 85 px): longer names are cut.
LEGEND_CHARS = 11


@dataclass(frozen=True)
class CommunityRow:
    community_id: str
    name: str
    url: str
    active_members: int
    xp: int
    level_ups: int
    rewards_granted: int


@dataclass(frozen=True)
class BoardRow:
    rank: int
    user_id: str
    name: str
    xp: int
    medal: str | None


class CompanyPage(Controller):
    """The company view in Whop's dashboard."""

    path = "/dashboard/{company_id:str}/company"

    @get("/", opt=requires_company(Action.READ_COMPANY))
    async def company(
        self,
        company_id: FromPath[str],
        page: NamedDependency[Page],
        request: Request[Any, Any, Any],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        sessionmaker: SessionsDep,
        period: FromQuery[Period] = "all",
    ) -> Template:
        base = request.url.path
        try:
            await require_company_feature(
                entitlements, company_id, Feature.CROSS_COMMUNITY_ANALYTICS
            )
            await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        except PlanRequired as refused:
            return page.render(
                "company/upgrade.html",
                status_code=refused.status,
                company_id=company_id,
                required_plan=refused.required_plan,
                detail=refused.detail,
            )
        reads = provide_company_reads(request.app.state)
        tabs = [(link(base, period=tab), label, tab == period) for tab, label in PERIOD_TABS]
        if page.htmx and request.headers.get("hx-target") == BOARD_ID:
            # A period tab: only the board is swapped.
            board = await company_board(downstream, reads, company_id, period, BOARD_ROWS, None)
            return page.render(
                "company/board.html",
                company_id=company_id,
                board=_board_rows(board),
                board_total=board.total,
                tabs=tabs,
            )
        analytics, board, names = await asyncio.gather(
            company_analytics(downstream, company_id, None, None),
            company_board(downstream, reads, company_id, period, BOARD_ROWS, None),
            _names(request, sessionmaker, company_id),
        )
        rows = _community_rows(page, company_id, analytics, names)
        return page.render(
            "company/index.html",
            company_id=company_id,
            since=analytics.since.date(),
            until=analytics.until.date(),
            totals={
                "active_members": analytics.active_members,
                "members_in_several": analytics.members_in_several,
                "xp": sum(row.xp for row in rows),
                "level_ups": sum(row.level_ups for row in rows),
                "rewards_granted": sum(row.rewards_granted for row in rows),
            },
            communities=rows,
            charts=_charts(analytics, rows),
            board=_board_rows(board),
            board_total=board.total,
            tabs=tabs,
            movers=await _movers(downstream, company_id, analytics, board),
            csv_url=f"/api/v1/companies/{company_id}/analytics/csv",
        )


class AppCompanyPage(CompanyPage):
    """The same view outside Whop (`/app/companies/{company_id}`), for an account that is an
    admin of every community of the company."""

    path = "/companies/{company_id:str}"


async def _names(
    request: Request[Any, Any, Any], sessionmaker: SessionsDep, company_id: str
) -> dict[str, str]:
    """The communities' names: a Whop company's as Whop lists them (also outside Whop: the
    app's own API key asks), else as the gateway knows them."""
    whop = request.app.state.get(WHOP_COMMUNITIES_STATE)
    if isinstance(whop, WhopCommunities) and company_id.startswith(WHOP_COMPANY_PREFIX):
        try:
            return dict(await company_communities(whop, sessionmaker, company_id))
        except WhopAccessUnavailable:
            return {}
    async with sessionmaker() as session:
        return dict(await WhopRepository(session).experiences_of(company_id))


def _community_rows(
    page: Page, company_id: str, analytics: CompanyAnalytics, names: dict[str, str]
) -> list[CommunityRow]:
    """Each community's window (most XP first, as the analytics order them)."""
    return [
        CommunityRow(
            community_id=community.community_id,
            name=names.get(community.community_id) or community.community_id,
            url=page.admin_url(community.community_id, company_id=company_id),
            active_members=community.active_members,
            xp=community.xp,
            level_ups=sum(day.level_ups for day in community.days),
            rewards_granted=sum(day.rewards_granted for day in community.days),
        )
        for community in analytics.communities
    ]


def _legend(name: str) -> str:
    return name if len(name) <= LEGEND_CHARS else name[: LEGEND_CHARS - 1] + "…"


def _charts(analytics: CompanyAnalytics, rows: list[CommunityRow]) -> list[Markup]:
    """XP and active members per day, one line per community."""
    if not analytics.communities:
        return []
    days: list[date] = [day.day for day in analytics.communities[0].days]
    labels = [_legend(row.name) for row in rows]
    xp = {
        label: [day.xp for day in community.days]
        for label, community in zip(labels, analytics.communities, strict=True)
    }
    active = {
        label: [day.active_members for day in community.days]
        for label, community in zip(labels, analytics.communities, strict=True)
    }
    return [
        line_chart("XP per day by community", days, xp),
        line_chart("Active members per day by community", days, active),
    ]


def _shown(entry: Any) -> str:
    return str(entry.display_name or entry.username or entry.user_id)


def _board_rows(board: CompanyLeaderboard) -> list[BoardRow]:
    return [
        BoardRow(
            rank=entry.rank,
            user_id=entry.user_id,
            name=_shown(entry),
            xp=entry.xp,
            medal=MEDALS.get(entry.rank),
        )
        for entry in board.entries
    ]


async def _movers(
    downstream: Downstream,
    company_id: str,
    analytics: CompanyAnalytics,
    board: CompanyLeaderboard,
) -> list[dict[str, Any]]:
    """The top movers with their names: from the board shown, else their company card (the
    user id for someone only in communities that do not count on the board)."""
    known = {entry.user_id: _shown(entry) for entry in board.entries}

    async def name_of(user_id: str) -> str:
        if user_id in known:
            return known[user_id]
        try:
            reply = await downstream.xp.GetCompanyMember(
                xp_pb2.GetCompanyMemberRequest(company_id=company_id, user_id=user_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return user_id
        return _shown(mappers.member_card(reply.member))

    names = await asyncio.gather(*(name_of(mover.user_id) for mover in analytics.top_movers))
    return [
        {"user_id": mover.user_id, "name": name, "xp": mover.xp, "communities": mover.communities}
        for mover, name in zip(analytics.top_movers, names, strict=True)
    ]


async def administered_companies(
    principal: Principal,
    community_ids: list[str],
    downstream: Downstream,
    entitlements: Entitlements,
    state: State,
) -> list[str]:
    """The companies of these communities whose company view the caller may open (the company
    routes' `access_in_company`: a Whop company's admins, a WEE5 group's owner), for links to
    it; a community whose company xp does not know yet (FAILED_PRECONDITION) has none."""

    async def company_of(community_id: str) -> str | None:
        try:
            reply = await downstream.xp.GetCompanyBoardSetting(
                xp_pb2.GetCompanyBoardSettingRequest(community_id=community_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return None
        return reply.setting.company_id or None

    found = {c for c in await asyncio.gather(*map(company_of, community_ids)) if c is not None}
    accesses = await asyncio.gather(
        *(
            access_in_company(
                principal,
                company_id,
                provide_companies(state),
                provide_access_cache(state),
                state.get(WHOP_COMMUNITIES_STATE),
                entitlements,
            )
            for company_id in sorted(found)
        )
    )
    return [a.community_id for a in accesses if a.role is not None and a.role >= Role.ADMIN]
