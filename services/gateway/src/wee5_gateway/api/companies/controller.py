"""Routes of a company (a Whop company `biz_…` and the communities of it xp knows): its board
across the communities that opted in, and a member's card with their XP per community; and
each community's opt-in.

Company routes need an admin of the company (`Action.READ_COMPANY`, checked by the guard) and
the enterprise feature `multi_community` on the company (its own plan, from billing:
`require_company_feature`). Readers of the same page or card share one xp answer for a second,
as on community boards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.companies import mappers
from wee5_gateway.api.companies.following import (
    apply_once,
    change_template,
    follow,
    shared_state,
    unfollow,
)
from wee5_gateway.api.companies.schemas import (
    CompanyBoardSetting,
    CompanyBoardSettingIn,
    CompanyLeaderboard,
    CompanyMemberCard,
    Period,
    SharedConfigApplied,
    SharedConfigApplyIn,
    SharedConfigState,
    SharedConfigTemplate,
    SharedFollowIn,
)
from wee5_gateway.api.companies.shared_config import (
    check_apply,
    check_targets,
)
from wee5_gateway.api.xp.boards import SHARED_READ_SECONDS
from wee5_gateway.api.xp.company_analytics import CompanyAnalytics, as_csv, company_analytics
from wee5_gateway.api.xp.mappers import PERIODS
from wee5_gateway.config import GatewaySettings
from wee5_gateway.core.access import Action, requires, requires_company
from wee5_gateway.core.cache import SharedReads
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.companies import (
    COMPANY,
    Companies,
    provide_companies,
    require_company_feature,
)
from wee5_gateway.core.deps import (
    ACCOUNTS,
    ACCOUNTS_OR_KEYS,
    COMMUNITY,
    AuditorDep,
    DownstreamDep,
    EntitlementsDep,
)
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import NotFoundProblem, problem_responses

MAX_COMPANY_PAGE = 100
PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_COMPANY_PAGE)]
_STATE_KEY = "wee5.company_reads"
# (company, period, limit, cursor) and (company, member)
PageKey = tuple[str, str, int, str | None]
CardKey = tuple[str, str]


class CompanyReads:
    """Company board pages and member cards readers were served, shared for a second."""

    def __init__(self, seconds: float) -> None:
        self.pages: SharedReads[PageKey, CompanyLeaderboard] = SharedReads(seconds / 2, seconds)
        self.cards: SharedReads[CardKey, CompanyMemberCard] = SharedReads(seconds / 2, seconds)


def provide_company_reads(state: State) -> CompanyReads:
    reads = state.get(_STATE_KEY)
    if not isinstance(reads, CompanyReads):
        settings = state.settings
        seconds = (
            settings.shared_read_seconds
            if isinstance(settings, GatewaySettings)
            else SHARED_READ_SECONDS
        )
        reads = CompanyReads(seconds)
        state[_STATE_KEY] = reads
    return reads


async def company_board(
    downstream: Downstream,
    reads: CompanyReads,
    company_id: str,
    period: Period,
    limit: int,
    cursor: str | None,
) -> CompanyLeaderboard:
    """A page of the company board (the caller checked access and `multi_community`)."""

    async def read() -> CompanyLeaderboard:
        reply = await downstream.xp.GetCompanyLeaderboard(
            xp_pb2.GetCompanyLeaderboardRequest(
                company_id=company_id,
                period=PERIODS.value(period),
                limit=limit,
                cursor=cursor or "",
            )
        )
        return mappers.leaderboard(company_id, period, reply)

    return await reads.pages.get((company_id, period, limit, cursor), read)


class CompanyController(Controller):
    path = COMPANY
    tags = ["companies"]
    security = ACCOUNTS
    dependencies = {
        "companies": Provide(provide_companies, sync_to_thread=False),
        "reads": Provide(provide_company_reads, sync_to_thread=False),
    }

    @get(
        "/leaderboard",
        opt=requires_company(Action.READ_COMPANY),
        operation_id="getCompanyLeaderboard",
        summary="Members ranked across the company's communities by their summed XP (company "
        "admins; enterprise)",
        description="Entries `{rank, user_id, xp}` with display names: a member is the same "
        "user id in every community of the company; only communities that opted in "
        "(`…/company-board`) count. `period`: `all`, `month`, `week` or `day` (the period of "
        "today in UTC). Pages with `cursor`. Needs `multi_community` (enterprise) on the "
        "company: 402 without it.",
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def leaderboard(
        self,
        company_id: FromPath[str],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        reads: NamedDependency[CompanyReads],
        period: FromQuery[Period] = "all",
        limit: PageSize = 25,
        cursor: FromQuery[str | None] = None,
    ) -> CompanyLeaderboard:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        return await company_board(downstream, reads, company_id, period, limit, cursor)

    @get(
        "/members/{user_id:str}",
        opt=requires_company(Action.READ_COMPANY),
        operation_id="getCompanyMember",
        summary="A member's company card: total XP, ranks, and XP in each community (company "
        "admins; enterprise)",
        description="`xp` and `rank` across the communities that count on the company board, "
        "per-period ranks, and `communities`: the member's XP and level in each community of "
        "the company (`in_company_board` says whether it counts). 404 for someone with no "
        "record in a counted community; 402 without `multi_community` on the company.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def member(
        self,
        company_id: FromPath[str],
        user_id: FromPath[str],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        reads: NamedDependency[CompanyReads],
    ) -> CompanyMemberCard:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)

        async def read() -> CompanyMemberCard:
            reply = await downstream.xp.GetCompanyMember(
                xp_pb2.GetCompanyMemberRequest(company_id=company_id, user_id=user_id)
            )
            return mappers.member_card(reply.member)

        return await reads.cards.get((company_id, user_id), read)


ANALYTICS_WINDOW = (
    "The window is [since, until): until defaults to now, since to the start of the UTC day 29 "
    "days before, and it spans at most 366 days. Times without a zone are UTC. Needs "
    "`cross_community_analytics` (enterprise) on the company: 402 without it."
)


class CompanyAnalyticsController(Controller):
    path = f"{COMPANY}/analytics"
    tags = ["companies", "analytics"]
    security = ACCOUNTS

    @get(
        "/",
        opt=requires_company(Action.READ_COMPANY),
        operation_id="getCompanyAnalytics",
        summary="Per UTC day and community: active members, XP, activities by kind, level-ups, "
        "rewards granted and their value, benchmark participation, downloads; members active "
        "in several communities, the top communities and the top movers across them (company "
        "admins; enterprise)",
        description=ANALYTICS_WINDOW,
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def analytics(
        self,
        company_id: FromPath[str],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> CompanyAnalytics:
        await require_company_feature(entitlements, company_id, Feature.CROSS_COMMUNITY_ANALYTICS)
        return await company_analytics(downstream, company_id, since, until)

    @get(
        "/csv",
        opt=requires_company(Action.READ_COMPANY),
        operation_id="getCompanyAnalyticsCsv",
        summary="The company's analytics as CSV: one row per UTC day and community (company "
        "admins; enterprise)",
        description=f"Columns as the JSON's days, with `day` and `community_id` first; maps "
        f"(activities by kind, amounts off by currency) as `key=value` pairs joined by `;`. "
        f"{ANALYTICS_WINDOW}",
        media_type="text/csv",
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def analytics_csv(
        self,
        company_id: FromPath[str],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Response[str]:
        await require_company_feature(entitlements, company_id, Feature.CROSS_COMMUNITY_ANALYTICS)
        analytics = await company_analytics(downstream, company_id, since, until)
        return Response(
            as_csv(analytics),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{company_id}-analytics.csv"'},
        )


class CompanyBoardSettingController(Controller):
    path = f"{COMMUNITY}/company-board"
    tags = ["companies"]
    security = ACCOUNTS_OR_KEYS
    dependencies = {"companies": Provide(provide_companies, sync_to_thread=False)}

    @get(
        "/",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getCompanyBoardSetting",
        summary="Whether the community counts on its company's board",
        description="`in_company_board` (false until an admin turns it on) and the company xp "
        "learned the community belongs to. 409 while xp does not know the company yet (it "
        "learns it from the community's first Whop webhook).",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def get_setting(
        self, community_id: FromPath[str], downstream: DownstreamDep
    ) -> CompanyBoardSetting:
        reply = await downstream.xp.GetCompanyBoardSetting(
            xp_pb2.GetCompanyBoardSettingRequest(community_id=community_id)
        )
        return mappers.setting(reply.setting)

    @put(
        "/",
        opt=requires(Action.MANAGE_LEADERBOARD),
        security=ACCOUNTS,
        operation_id="updateCompanyBoardSetting",
        summary="Count the community on its company's board, or stop (admins; audited)",
        description="The company's boards are rebuilt from Postgres with (or without) the "
        "community's XP. 409 while xp does not know the company yet.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def update_setting(
        self,
        community_id: FromPath[str],
        data: Annotated[CompanyBoardSettingIn, body_example({"in_company_board": True})],
        downstream: DownstreamDep,
        companies: NamedDependency[Companies],
        audit: AuditorDep,
    ) -> CompanyBoardSetting:
        async with audit.change(
            "company_board.changed",
            target=f"community:{community_id}",
            intent={"in_company_board": data.in_company_board},
        ) as change:
            reply = await downstream.xp.SetCompanyBoardSetting(
                xp_pb2.SetCompanyBoardSettingRequest(
                    community_id=community_id, in_company_board=data.in_company_board
                )
            )
            if reply.previous == reply.setting.in_company_board:
                change.unchanged()
            change.done(
                before={"in_company_board": reply.previous},
                after={"in_company_board": reply.setting.in_company_board},
            )
        companies.invalidate(reply.setting.company_id)
        return mappers.setting(reply.setting)


class SharedConfigController(Controller):
    path = f"{COMPANY}/shared-config"
    tags = ["companies"]
    security = ACCOUNTS
    dependencies = {"companies": Provide(provide_companies, sync_to_thread=False)}

    @post(
        "/apply",
        opt=requires_company(Action.MANAGE_COMPANY_CONFIG),
        status_code=200,
        operation_id="applySharedConfig",
        summary="Copy one XP config, reward rules and badges to several communities of the "
        "company (company admins; enterprise; audited)",
        description="The `parts` (`xp_config`, `reward_rules`, `badges`) of `from_community_id` "
        "(or of `template`) are applied to each of `community_ids` through the community's own "
        "routes, so each community's plan and rules apply: the answer says per community and "
        "part what changed, or why it was refused (the status and detail its own route would "
        "answer). Reward rules are replaced as a set (rules of other levels removed; a badge "
        "reward gives the community's badge of that name); badges are created or redefined by "
        "name, others kept. A part a community holds already is left alone: the same apply "
        "again changes nothing. A source or target outside the company is a 422 naming it, "
        "and nothing is applied. Needs `multi_community` on the company (402).",
        responses=problem_responses(400, 401, 402, 403, 422, 503, 504),
    )
    async def apply(
        self,
        company_id: FromPath[str],
        data: Annotated[
            SharedConfigApplyIn,
            body_example(
                {
                    "from_community_id": "exp_main",
                    "parts": ["xp_config", "reward_rules"],
                    "community_ids": ["exp_vip", "exp_course"],
                }
            ),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        companies: NamedDependency[Companies],
        audit: AuditorDep,
    ) -> SharedConfigApplied:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        communities = {c.community_id for c in await companies.communities(company_id)}
        check_apply(data, company_id, communities)
        return await apply_once(downstream, entitlements, audit, company_id, data)

    @get(
        "/",
        opt=requires_company(Action.MANAGE_COMPANY_CONFIG),
        operation_id="getSharedConfig",
        summary="The company's template (XP config, reward rules, badges) and which communities "
        "follow each part (company admins; enterprise)",
        description="`template` holds the parts set with `PUT …/shared-config/template` (null: "
        "not set); `followers` lists per part the communities that follow it.",
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def state(
        self, company_id: FromPath[str], entitlements: EntitlementsDep, audit: AuditorDep
    ) -> SharedConfigState:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        return await shared_state(audit, company_id)

    @put(
        "/template",
        opt=requires_company(Action.MANAGE_COMPANY_CONFIG),
        operation_id="setSharedConfigTemplate",
        summary="Set parts of the company's template and apply them to the communities that "
        "follow them (company admins; enterprise; audited)",
        description="Each part given replaces that part of the template (others stay). Each "
        "follower of a changed part gets it as with `…/apply`, answered per community; one "
        "that changed the part itself since it was last applied is `overridden`: it stops "
        "following that part and keeps its own.",
        responses=problem_responses(400, 401, 402, 403, 422, 503, 504),
    )
    async def set_template(
        self,
        company_id: FromPath[str],
        data: Annotated[
            SharedConfigTemplate,
            body_example({"reward_rules": [{"level": 5, "kind": "free_days", "free_days": 3}]}),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> SharedConfigApplied:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        return await change_template(downstream, entitlements, audit, company_id, data)

    @put(
        "/followers",
        opt=requires_company(Action.MANAGE_COMPANY_CONFIG),
        operation_id="followSharedConfig",
        summary="Communities of the company follow parts of its template: applied now and on "
        "each change (company admins; enterprise; audited)",
        description="The template's `parts` are applied to each of `community_ids` as with "
        "`…/apply`; each part a community took is followed from then on (a refused one is "
        "not). A community outside the company, or a part the template does not hold, is a "
        "422 and nothing is applied.",
        responses=problem_responses(400, 401, 402, 403, 422, 503, 504),
    )
    async def follow(
        self,
        company_id: FromPath[str],
        data: Annotated[
            SharedFollowIn,
            body_example({"parts": ["reward_rules"], "community_ids": ["exp_vip"]}),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        companies: NamedDependency[Companies],
        audit: AuditorDep,
    ) -> SharedConfigApplied:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        communities = {c.community_id for c in await companies.communities(company_id)}
        check_targets(data.community_ids, company_id, communities)
        return await follow(downstream, entitlements, audit, company_id, data)

    @delete(
        "/followers/{community_id:str}",
        opt=requires_company(Action.MANAGE_COMPANY_CONFIG),
        operation_id="unfollowSharedConfig",
        summary="The community stops following the company's template; it keeps what it holds "
        "(company admins; enterprise; audited)",
        description="Changes of the template no longer reach it. 404 for a community that is "
        "not one of the company's.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def unfollow(
        self,
        company_id: FromPath[str],
        community_id: FromPath[str],
        entitlements: EntitlementsDep,
        companies: NamedDependency[Companies],
        audit: AuditorDep,
    ) -> None:
        await require_company_feature(entitlements, company_id, Feature.MULTI_COMMUNITY)
        if community_id not in {c.community_id for c in await companies.communities(company_id)}:
            raise NotFoundProblem(f"{community_id} is not a community of the company {company_id}")
        await unfollow(audit, company_id, community_id)
