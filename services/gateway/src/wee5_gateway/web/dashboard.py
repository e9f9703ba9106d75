"""The dashboard view for a community's admins and owner: in Whop, the company's home
(`/dashboard/{company_id}`) picks one of its communities; then the overview, analytics with
server-drawn charts, billing (Stripe Checkout and the portal), API keys and the audit log. Each
page declares the same action as its JSON route and calls the same functions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import grpc
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from wee5.billing.v1 import billing_pb2
from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.billing import mappers as billing_mappers
from wee5_gateway.api.billing.checkout import open_portal, start_checkout
from wee5_gateway.api.billing.schemas import CheckoutRequest
from wee5_gateway.api.communities.schemas import ApiKeyCreate, Scope
from wee5_gateway.api.communities.service import (
    audit_log_page,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from wee5_gateway.api.rewards.controller import reward_page_of
from wee5_gateway.api.xp import mappers as xp_mappers
from wee5_gateway.api.xp.analytics import (
    BASIC_DAYS,
    basic_analytics,
    full_analytics,
    last_days,
)
from wee5_gateway.api.xp.schemas import Analytics, DailyActivity
from wee5_gateway.core.access import (
    WHOP_COMMUNITIES_STATE,
    Access,
    Action,
    Principal,
    Role,
    access_in_company,
    require_credentials,
    requires,
)
from wee5_gateway.core.access_cache import provide_access_cache
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.companies import provide_companies
from wee5_gateway.core.deps import (
    AccessCacheDep,
    AccessDep,
    AuditorDep,
    DownstreamDep,
    EntitlementsDep,
    SessionsDep,
)
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.problems import Forbidden, Unauthenticated
from wee5_gateway.core.whop_access import (
    WhopAccessUnavailable,
    WhopCommunities,
    WhopRefused,
    WhopUnavailable,
)
from wee5_gateway.db.repository import WhopRepository
from wee5_gateway.web.charts.series import bar_chart, line_chart
from wee5_gateway.web.forms import FORM_ERROR, FieldErrors, parse_form
from wee5_gateway.web.page import Page
from wee5_kit.communities import is_community_id

# The windows premium analytics offers, in days.
RANGES = (7, 30, 90)
REWARDS_COUNTED = 100
AUDIT_PAGE_SIZE = 50
SCOPES: tuple[Scope, ...] = ("xp:read", "xp:admin", "activities:write")


# --- the company's home (Whop only) -----------------------------------------------------------


class DashboardHomeController(Controller):
    """`/dashboard/{company_id}`: the communities (experiences) of the company its admin may
    manage. Whop's access check on each says who is an admin."""

    path = "/dashboard/{company_id:str}"

    @get("/", name="dashboard:home")
    async def home(
        self,
        company_id: FromPath[str],
        page: NamedDependency[Page],
        principal: NamedDependency[Principal],
        sessionmaker: SessionsDep,
        entitlements: EntitlementsDep,
        request: Request[Any, Any, Any],
    ) -> Template:
        require_credentials(principal)
        whop = request.app.state.get(WHOP_COMMUNITIES_STATE)
        if principal.whop_user_id is None or not isinstance(whop, WhopCommunities):
            raise Unauthenticated("open the dashboard from your Whop company")
        communities = await company_communities(whop, sessionmaker, company_id)
        roles = await asyncio.gather(
            *(whop.role_of(principal.whop_user_id, cid) for cid, _ in communities)
        )
        managed = [
            (cid, name, role)
            for (cid, name), role in zip(communities, roles, strict=True)
            if role in ("admin", "owner")
        ]
        if not managed:
            raise Forbidden("the dashboard is for the company's admins")
        # The company view's link, for whom its guard lets in (the company routes' access).
        company = await access_in_company(
            principal,
            company_id,
            provide_companies(request.app.state),
            provide_access_cache(request.app.state),
            whop,
            entitlements,
        )
        return page.render(
            "dashboard/home.html",
            company_id=company_id,
            communities=managed,
            company_admin=company.role is not None and company.role >= Role.ADMIN,
        )


async def company_communities(
    whop: WhopCommunities, sessionmaker: SessionsDep, company_id: str
) -> list[tuple[str, str]]:
    """The company's communities with their names, as Whop lists them (the gateway then knows
    them all); while Whop does not answer, the ones the gateway knows already."""
    listed: dict[str, str] = {}
    try:
        async for experience in whop.api.experiences(company_id):
            if is_community_id(str(experience["id"])):
                listed[str(experience["id"])] = str(experience.get("name") or "")
    except (WhopUnavailable, WhopRefused) as error:
        async with sessionmaker() as session:
            known = await WhopRepository(session).experiences_of(company_id)
        if not known:
            raise WhopAccessUnavailable(
                f"Whop did not list the company's communities ({error})"
            ) from None
        return known
    async with sessionmaker.begin() as session:
        await WhopRepository(session).add_experiences(company_id, listed)
    return sorted(listed.items(), key=lambda item: (item[1], item[0]))


# --- overview and analytics ----------------------------------------------------------------


class OverviewController(Controller):
    path = "/{community_id:str}"

    @get("/", opt=requires(Action.READ_ANALYTICS), name="dashboard:overview")
    async def overview(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
    ) -> Template:
        basic, members, active_week, pending, dead, plan = await asyncio.gather(
            basic_analytics(downstream, community_id),
            _ranked_count(downstream, community_id, "all"),
            _ranked_count(downstream, community_id, "week"),
            reward_page_of(downstream, community_id, "pending", None, None, REWARDS_COUNTED),
            reward_page_of(downstream, community_id, "dead", None, None, REWARDS_COUNTED),
            entitlements.of(community_id),
        )
        today = basic.days[-1]
        return _render(
            page,
            "dashboard/overview.html",
            community_id,
            access,
            section="overview",
            plan=plan.plan,
            members=members,
            active_today=today.active_members,
            active_week=active_week,
            xp_today=today.xp,
            level_ups_today=today.level_ups,
            level_ups_week=basic.level_ups,
            pending=_count(len(pending.rewards), pending.next_cursor),
            dead=_count(len(dead.rewards), dead.next_cursor),
        )

    @get("/analytics", opt=requires(Action.READ_ANALYTICS), name="dashboard:analytics")
    async def analytics(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        days: FromQuery[int] = BASIC_DAYS,
    ) -> Template:
        plan = await entitlements.of(community_id)
        context: dict[str, Any]
        if plan.has(Feature.ANALYTICS):
            window = days if days in RANGES else BASIC_DAYS
            full = await full_analytics(downstream, community_id, *last_days(window))
            context = {
                "premium": True,
                "window": window,
                "totals": _totals(full.days),
                "charts": _full_charts(full),
                "movers": await _movers(downstream, community_id, full),
            }
        else:
            basic = await basic_analytics(downstream, community_id)
            points = [(day.day, day) for day in basic.days]
            context = {
                "premium": False,
                "window": BASIC_DAYS,
                "totals": {
                    "xp": basic.xp,
                    "new_members": basic.new_members,
                    "level_ups": basic.level_ups,
                },
                "charts": [
                    bar_chart("Active members", [(d, x.active_members) for d, x in points]),
                    bar_chart("XP awarded", [(d, x.xp) for d, x in points]),
                ],
                "movers": [],
            }
        return _render(
            page,
            "dashboard/analytics.html",
            community_id,
            access,
            section="analytics",
            plan=plan.plan,
            ranges=RANGES,
            **context,
        )


def _count(shown: int, next_cursor: str | None) -> str:
    return f"{shown:,}+" if next_cursor else f"{shown:,}"


async def _ranked_count(downstream: Downstream, community_id: str, period: str) -> str:
    """Members on the community's board for the period (all time: every member with XP)."""
    reply = await downstream.xp.GetLeaderboard(
        xp_pb2.GetLeaderboardRequest(
            community_id=community_id, period=xp_mappers.PERIODS.value(period), limit=1
        )
    )
    return f"{reply.total:,}"


def _totals(days: list[DailyActivity]) -> dict[str, int]:
    return {
        "xp": sum(day.xp for day in days),
        "new_members": sum(day.new_members for day in days),
        "level_ups": sum(day.level_ups for day in days),
    }


def _full_charts(analytics: Analytics) -> list[Any]:
    days: list[date] = [day.day for day in analytics.days]
    kinds = sorted({kind for day in analytics.days for kind in day.activities_by_kind})
    by_kind = {
        kind: [day.activities_by_kind.get(kind, 0) for day in analytics.days] for kind in kinds
    }
    return [
        bar_chart("Active members", [(d.day, d.active_members) for d in analytics.days]),
        bar_chart("XP awarded", [(d.day, d.xp) for d in analytics.days]),
        line_chart("Activities by kind", days, by_kind or {"activities": [0] * len(days)}),
        bar_chart("New members", [(d.day, d.new_members) for d in analytics.days]),
        bar_chart("Level-ups", [(d.day, d.level_ups) for d in analytics.days]),
    ]


async def _movers(
    downstream: Downstream, community_id: str, analytics: Analytics
) -> list[dict[str, Any]]:
    """The window's top movers with the names their cards carry (the user id when unknown)."""

    async def name_of(user_id: str) -> str:
        try:
            reply = await downstream.xp.GetMember(
                xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return user_id
        return reply.member.profile.display_name or reply.member.profile.username or user_id

    names = await asyncio.gather(*(name_of(mover.user_id) for mover in analytics.top_movers))
    return [
        {"user_id": mover.user_id, "name": name, "xp": mover.xp}
        for mover, name in zip(analytics.top_movers, names, strict=True)
    ]


# --- billing -------------------------------------------------------------------------------


class BillingPageController(Controller):
    path = "/{community_id:str}/billing"

    @get("/", opt=requires(Action.READ_BILLING), name="dashboard:billing")
    async def billing(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        checkout: FromQuery[str | None] = None,
    ) -> Template:
        return await _billing_page(
            page, community_id, access, downstream, entitlements, returned=checkout
        )

    @post("/checkout", opt=requires(Action.MANAGE_BILLING), status_code=HTTP_303_SEE_OTHER)
    async def checkout(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        sessionmaker: SessionsDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> Response[Any]:
        form = await request.form()
        back = _absolute(request, page.admin_url(community_id, "/billing"))
        try:
            data = parse_form(
                {
                    "plan": form.get("plan", ""),
                    "interval": form.get("interval", ""),
                    "success_url": back + "?checkout=done",
                    "cancel_url": back + "?checkout=cancelled",
                },
                CheckoutRequest,
            )
        except FieldErrors as refused:
            return await _billing_page(
                page, community_id, access, downstream, entitlements, errors=refused.errors
            )
        started = await start_checkout(
            community_id,
            data,
            access=access,
            sessionmaker=sessionmaker,
            downstream=downstream,
            audit=audit,
        )
        return _go_to(page, started.url)

    @post("/portal", opt=requires(Action.MANAGE_BILLING), status_code=HTTP_303_SEE_OTHER)
    async def portal(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> Response[Any]:
        back = _absolute(request, page.admin_url(community_id, "/billing"))
        opened = await open_portal(
            community_id, back, access=access, downstream=downstream, audit=audit
        )
        return _go_to(page, opened.url)


async def _billing_page(
    page: Page,
    community_id: str,
    access: AccessDep,
    downstream: Downstream,
    entitlements: EntitlementsDep,
    *,
    returned: str | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    current, plans, reply = await asyncio.gather(
        entitlements.of(community_id),
        entitlements.plans(),
        downstream.billing.GetSubscription(
            billing_pb2.GetSubscriptionRequest(community_id=community_id)
        ),
    )
    subscription = billing_mappers.subscription_view(community_id, reply)
    rank = next((offer.rank for offer in plans if offer.plan == current.plan), 0)
    return _render(
        page,
        "dashboard/billing.html",
        community_id,
        access,
        status_code=422 if errors else 200,
        section="billing",
        plan=current.plan,
        current=current,
        current_rank=rank,
        subscription=subscription,
        plans=plans,
        returned=returned,
        errors=errors or {},
        form_error=(errors or {}).get(FORM_ERROR) or next(iter((errors or {}).values()), None),
    )


def _absolute(request: Request[Any, Any, Any], path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def _go_to(page: Page, url: str) -> Response[Any]:
    """Off to Stripe: htmx follows `HX-Redirect` with a whole-page visit; a plain form a 303."""
    if page.htmx:
        return Response(None, status_code=200, headers={"HX-Redirect": url})
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


# --- API keys and the audit log -------------------------------------------------------------


class ApiKeysPageController(Controller):
    path = "/{community_id:str}/api-keys"

    @get("/", opt=requires(Action.MANAGE_API_KEYS), name="dashboard:api-keys")
    async def keys(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        sessionmaker: SessionsDep,
        revoked: FromQuery[bool] = False,
    ) -> Template:
        return await _keys_page(page, community_id, access, sessionmaker, revoked=revoked)

    @post("/", opt=requires(Action.MANAGE_API_KEYS), status_code=200)
    async def create(
        self,
        community_id: FromPath[str],
        request: Request[Any, Any, Any],
        page: NamedDependency[Page],
        access: AccessDep,
        sessionmaker: SessionsDep,
        audit: AuditorDep,
    ) -> Template:
        form = await request.form()
        values = {"name": str(form.get("name", "")).strip(), "scopes": form.getall("scopes", [])}
        try:
            data = parse_form(values, ApiKeyCreate)
        except FieldErrors as refused:
            errors = refused.errors
            if "scopes" in errors and not values["scopes"]:
                errors["scopes"] = "choose at least one scope"  # msgspec says "length >= 1"
            return await _keys_page(
                page, community_id, access, sessionmaker, errors=errors, values=values
            )
        created = await create_api_key(
            community_id, data, access=access, sessionmaker=sessionmaker, audit=audit
        )
        return await _keys_page(page, community_id, access, sessionmaker, created=created.key)

    @post(
        "/{key_id:uuid}/revoke",
        opt=requires(Action.MANAGE_API_KEYS),
        status_code=HTTP_303_SEE_OTHER,
    )
    async def revoke(
        self,
        community_id: FromPath[str],
        key_id: FromPath[uuid.UUID],
        page: NamedDependency[Page],
        sessionmaker: SessionsDep,
        audit: AuditorDep,
        access_cache: AccessCacheDep,
    ) -> Redirect:
        await revoke_api_key(
            community_id, key_id, sessionmaker=sessionmaker, audit=audit, cache=access_cache
        )
        # Back to the list (a reload then shows it again rather than revoking again).
        return Redirect(
            page.admin_url(community_id, "/api-keys?revoked=1"), status_code=HTTP_303_SEE_OTHER
        )


async def _keys_page(
    page: Page,
    community_id: str,
    access: AccessDep,
    sessionmaker: SessionsDep,
    *,
    created: str | None = None,
    revoked: bool = False,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Template:
    return _render(
        page,
        "dashboard/api_keys.html",
        community_id,
        access,
        status_code=422 if errors else 200,
        section="api-keys",
        keys=await list_api_keys(community_id, sessionmaker),
        scopes=SCOPES,
        created=created,
        revoked=revoked,
        errors=errors or {},
        values=values or {"name": "", "scopes": ["xp:read"]},
    )


class AuditPageController(Controller):
    path = "/{community_id:str}/audit"

    @get("/", opt=requires(Action.READ_AUDIT_LOG), name="dashboard:audit")
    async def audit_log(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        sessionmaker: SessionsDep,
        cursor: FromQuery[str | None] = None,
    ) -> Template:
        entries = await audit_log_page(
            community_id, sessionmaker, limit=AUDIT_PAGE_SIZE, cursor=cursor
        )
        return _render(
            page,
            "dashboard/audit.html",
            community_id,
            access,
            section="audit",
            entries=entries.entries,
            next_cursor=entries.next_cursor,
            first_page=cursor is None,
        )


# --- shared -------------------------------------------------------------------------------


def admin_context(access: Access, section: str) -> dict[str, Any]:
    """What `dashboard/_layout.html` needs besides `community_id`: the nav's current section,
    and whether the owner's links (billing, API keys, audit log) show."""
    is_owner = (access.role is not None and access.role >= Role.OWNER) or (
        access.principal.is_platform_admin
    )
    return {"section": section, "is_owner": is_owner}


def _render(
    page: Page,
    template: str,
    community_id: str,
    access: AccessDep,
    *,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    return page.render(
        template,
        status_code=status_code,
        community_id=community_id,
        **admin_context(access, section),
        **context,
    )
