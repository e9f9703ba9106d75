"""Routes of the xp context, all served by xp: leaderboards, rank cards and XP history
(members), the XP rules and adjustments (admins), points and imports, the API-key activity
intake and analytics. Admin writes are audited around the call (core/audit.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import grpc
import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.rewards.cards import card_badges
from wee5_gateway.api.xp import mappers
from wee5_gateway.api.xp.analytics import basic_analytics, full_analytics
from wee5_gateway.api.xp.boards import (
    DEFAULT_VISIBILITY,
    PublicBoards,
    board_audience,
    provide_boards,
)
from wee5_gateway.api.xp.schemas import (
    ActivityIn,
    ActivityRecorded,
    Analytics,
    BasicAnalytics,
    History,
    ImportDone,
    ImportIn,
    Leaderboard,
    LeaderboardSettings,
    LeaderboardSettingsIn,
    MemberCard,
    MemberPrivacy,
    MemberPrivacyIn,
    Period,
    PointsAwarded,
    PointsIn,
    XpAdjusted,
    XpAdjustmentIn,
    XpConfigChanged,
    XpConfigIn,
    XpConfigView,
)
from wee5_gateway.core.access import Access, Action, Role, requires
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import (
    ACCOUNTS,
    ACCOUNTS_OR_KEYS,
    API_KEYS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
    EntitlementsDep,
    SessionsDep,
)
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.problems import Conflict, NotFoundProblem, problem_responses
from wee5_gateway.db.repository import LeaderboardSettingsRepository

MAX_LEADERBOARD_PAGE = 100
PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_LEADERBOARD_PAGE)]


class CommunityController(Controller):
    path = COMMUNITY
    tags = ["communities"]
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @get(
        "/leaderboard",
        opt=requires(Action.READ_COMMUNITY, audience=board_audience),
        summary="Ranked members of a community for a period (members; anyone on a public "
        "board, admins only on an admins-only one)",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def leaderboard(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        boards: NamedDependency[PublicBoards],
        period: FromQuery[Period] = "all",
        limit: PageSize = 25,
        cursor: FromQuery[str | None] = None,
        at: Annotated[
            date | None,
            QueryParameter(
                description="A day inside a past period to show (e.g. last week's winners); "
                "default: the current period"
            ),
        ] = None,
    ) -> Leaderboard:
        async def read() -> Leaderboard:
            reply = await downstream.xp.GetLeaderboard(
                xp_pb2.GetLeaderboardRequest(
                    community_id=community_id,
                    period=mappers.PERIODS.value(period),
                    limit=limit,
                    cursor=cursor or "",
                    viewer_user_id=access.member_user_id or "",
                    at=at.isoformat() if at else "",
                )
            )
            return mappers.leaderboard(community_id, period, reply)

        if access.principal.is_anonymous:  # only ever let in on a public board
            return await boards.anonymous_page((community_id, period, limit, cursor, at), read)
        return await read()

    @get(
        "/members/{user_id:str}",
        opt=requires(Action.READ_COMMUNITY),
        summary="Rank card of one member",
        responses=problem_responses(401, 403, 404, 503, 504),
    )
    async def member(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> MemberCard:
        reply = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
        )
        if reply.member.hidden_from_leaderboards and not _sees_hidden(access, user_id):
            # Hidden from others: their card says no more than the board does.
            raise NotFoundProblem(f"member {user_id} has no XP in community {community_id}")
        badges = await card_badges(downstream, community_id, user_id)
        return mappers.member_card(reply.member, badges)

    @get(
        "/members/{user_id:str}/history",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getMemberHistory",
        summary="A member's XP ledger, newest first",
        responses=problem_responses(400, 401, 403, 404, 503, 504),
    )
    async def history(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        downstream: DownstreamDep,
        limit: PageSize = 25,
        cursor: FromQuery[str | None] = None,
    ) -> History:
        reply = await downstream.xp.GetHistory(
            xp_pb2.GetHistoryRequest(
                community_id=community_id,
                user_id=user_id,
                page_size=limit,
                page_token=cursor or "",
            )
        )
        return mappers.history(community_id, user_id, reply)

    @put(
        "/members/me/privacy",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="setMyMemberPrivacy",
        summary="Hide yourself from (or show yourself on) the boards others see",
        description="The caller is the member their account (or Whop sign-in) is linked to in "
        "this community. Hidden members are absent from others' leaderboards and cards; they "
        "still see their own card and their own entry (`me`), ranked as if visible.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def set_privacy(
        self,
        community_id: FromPath[str],
        data: JSONBody[MemberPrivacyIn],
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> MemberPrivacy:
        user_id = access.member_user_id
        if not user_id:
            raise Conflict(
                "the caller is not linked to a member of this community, so there is no "
                "member whose privacy to set"
            )
        reply = await downstream.xp.SetMemberPrivacy(
            xp_pb2.SetMemberPrivacyRequest(
                community_id=community_id,
                user_id=user_id,
                hidden_from_leaderboards=data.hidden_from_leaderboards,
            )
        )
        return MemberPrivacy(community_id, user_id, reply.hidden_from_leaderboards)


def _sees_hidden(access: Access, user_id: str) -> bool:
    """The hidden member themselves and the community's admins."""
    return access.member_user_id == user_id or (
        access.role is not None and access.role >= Role.ADMIN
    )


class LeaderboardSettingsController(Controller):
    path = f"{COMMUNITY}/leaderboard-settings"
    tags = ["xp"]
    security = ACCOUNTS_OR_KEYS
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @get(
        "/",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getLeaderboardSettings",
        summary="Who may read the community's leaderboard: public, members or admins",
        responses=problem_responses(400, 401, 403),
    )
    async def get_settings(
        self, community_id: FromPath[str], boards: NamedDependency[PublicBoards]
    ) -> LeaderboardSettings:
        return LeaderboardSettings(community_id, await boards.visibility(community_id))

    @put(
        "/",
        opt=requires(Action.MANAGE_LEADERBOARD),
        security=ACCOUNTS,
        operation_id="updateLeaderboardSettings",
        summary="Make the leaderboard public (readable without signing in), members-only "
        "(the default) or admins-only (admins; audited)",
        responses=problem_responses(400, 401, 403),
    )
    async def update_settings(
        self,
        community_id: FromPath[str],
        data: JSONBody[LeaderboardSettingsIn],
        access: AccessDep,
        sessionmaker: SessionsDep,
        boards: NamedDependency[PublicBoards],
        audit: AuditorDep,
    ) -> LeaderboardSettings:
        async with sessionmaker.begin() as session:
            stored = LeaderboardSettingsRepository(session)
            before = await stored.visibility_for_update(community_id) or DEFAULT_VISIBILITY
            await stored.set_visibility(community_id, data.visibility, access.principal.account_id)
            await audit.record(
                session,
                action="leaderboard_settings.changed",
                target=f"community:{community_id}",
                before={"visibility": before},
                after={"visibility": data.visibility},
            )
        boards.forget_visibility(community_id)
        return LeaderboardSettings(community_id, data.visibility)


class XpConfigController(Controller):
    path = f"{COMMUNITY}/xp-config"
    tags = ["xp"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.MANAGE_XP_CONFIG),
        operation_id="getXpConfig",
        summary="The community's XP rules: XP per kind, cooldown, channels, boosts, level curve",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_config(
        self, community_id: FromPath[str], downstream: DownstreamDep
    ) -> XpConfigView:
        reply = await downstream.xp.GetXpConfig(
            xp_pb2.GetXpConfigRequest(community_id=community_id)
        )
        return mappers.config_view(community_id, reply.config)

    @put(
        "/",
        opt=requires(Action.MANAGE_XP_CONFIG),
        operation_id="updateXpConfig",
        summary="Replace the community's XP rules (admins; premium plan; audited). A new level "
        "curve recomputes every member's level; rewards of levels reached before are never "
        "granted again.",
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def update_config(
        self,
        community_id: FromPath[str],
        data: JSONBody[XpConfigIn],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> XpConfigChanged:
        await entitlements.require_feature(community_id, Feature.CUSTOM_XP_RATES)
        async with audit.change(
            "xp_config.changed",
            target=f"community:{community_id}",
            intent=msgspec.to_builtins(data),
        ) as change:
            reply = await downstream.xp.UpdateXpConfig(
                xp_pb2.UpdateXpConfigRequest(
                    community_id=community_id, config=mappers.config_to_proto(data)
                )
            )
            after = mappers.config_view(community_id, reply.config)
            change.done(
                before=mappers.audited_config(mappers.config_view(community_id, reply.previous)),
                after={**mappers.audited_config(after), "levels_changed": reply.levels_changed},
            )
        return XpConfigChanged(
            **{f: getattr(after, f) for f in after.__struct_fields__},
            levels_changed=reply.levels_changed,
        )


class XpAdjustmentController(Controller):
    path = f"{COMMUNITY}/members/{{user_id:str}}/xp-adjustments"
    tags = ["xp"]
    security = ACCOUNTS_OR_KEYS

    @post(
        "/",
        opt=requires(Action.ADJUST_XP),
        status_code=200,
        operation_id="adjustMemberXp",
        summary="Add or take away a member's XP with a reason (admins; audited). A new ledger "
        "entry: the level may go down; idempotent on idempotency_key.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def adjust(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        data: JSONBody[XpAdjustmentIn],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> XpAdjusted:
        principal = access.principal
        actor = principal.actor_id
        request = {
            "delta": data.delta,
            "reason": data.reason,
            "idempotency_key": data.idempotency_key,
        }
        # A retry after a crash completes the entry its first attempt left pending, with the
        # state that attempt read before its call: xp answers a repeated key with the current
        # state, which is the state after.
        async with audit.change(
            "xp.adjusted",
            target=f"member:{user_id}",
            intent=request,
            idempotency_key=data.idempotency_key,
            before=await _standing(downstream, community_id, user_id),
        ) as change:
            reply = await downstream.xp.AdjustXp(
                xp_pb2.AdjustXpRequest(
                    community_id=community_id,
                    user_id=user_id,
                    delta=data.delta,
                    reason=data.reason,
                    actor_user_id=actor[:64],
                    idempotency_key=data.idempotency_key,
                )
            )
            change.done(
                before=None
                if reply.duplicate
                else {"xp": reply.previous_xp, "level": reply.previous_level},
                after={"xp": reply.total_xp, "level": reply.level, **request},
            )
        return XpAdjusted(
            community_id=community_id,
            user_id=user_id,
            xp=reply.total_xp,
            level=reply.level,
            previous_xp=reply.previous_xp,
            previous_level=reply.previous_level,
            duplicate=reply.duplicate,
        )


async def _standing(downstream: Downstream, community_id: str, user_id: str) -> dict[str, int]:
    """The member's XP and level now; a member xp does not know yet has no XP and the first
    level of the community's curve."""
    try:
        reply = await downstream.xp.GetMember(
            xp_pb2.GetMemberRequest(community_id=community_id, user_id=user_id)
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        config = await downstream.xp.GetXpConfig(
            xp_pb2.GetXpConfigRequest(community_id=community_id)
        )
        return {"xp": 0, "level": config.config.level_curve.first_level}
    return {"xp": reply.member.xp, "level": reply.member.level}


class PointsController(Controller):
    path = f"{COMMUNITY}/points"
    tags = ["points"]
    security = ACCOUNTS_OR_KEYS

    @post(
        "/",
        opt=requires(Action.AWARD_POINTS),
        status_code=200,
        operation_id="awardPoints",
        summary="Give a member points for an action (admins, API keys with xp:admin; audited). "
        "Idempotent on idempotency_key.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def award_points(
        self,
        community_id: FromPath[str],
        data: JSONBody[PointsIn],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> PointsAwarded:
        request = {
            "reason": data.reason,
            "points": data.points,
            "idempotency_key": data.idempotency_key,
        }
        async with audit.change(
            "points.awarded",
            target=f"member:{data.user_id}",
            intent=request,
            idempotency_key=data.idempotency_key,
        ) as change:
            reply = await downstream.xp.AwardPoints(
                xp_pb2.AwardPointsRequest(
                    community_id=community_id,
                    user_id=data.user_id,
                    points=data.points or 0,
                    reason=data.reason,
                    idempotency_key=data.idempotency_key,
                )
            )
            change.done(after={**request, "total_xp": reply.total_xp})
        return PointsAwarded(duplicate=reply.duplicate, total_xp=reply.total_xp, level=reply.level)


class ImportsController(Controller):
    path = f"{COMMUNITY}/imports"
    tags = ["imports"]
    security = ACCOUNTS

    @post(
        "/",
        opt=requires(Action.IMPORT_MEMBERS),
        status_code=200,
        operation_id="importMembers",
        summary="Import members' XP from another bot, up to 1000 per call (owners; audited). "
        "Importing the same numbers again changes nothing; newer ones add the difference.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def import_members(
        self,
        community_id: FromPath[str],
        data: JSONBody[ImportIn],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> ImportDone:
        request = {"source": data.source, "members": len(data.members)}
        async with audit.change(
            "members.imported", target=f"community:{community_id}", intent=request
        ) as change:
            reply = await downstream.xp.ImportMembers(
                xp_pb2.ImportMembersRequest(
                    community_id=community_id,
                    source=mappers.SOURCES.value(data.source),
                    members=[
                        xp_pb2.ImportedMember(
                            user_id=m.user_id, xp=m.xp, message_count=m.message_count
                        )
                        for m in data.members
                    ],
                )
            )
            change.done(after={**request, "imported": reply.imported})
        return ImportDone(imported=reply.imported)


class ActivitiesController(Controller):
    path = f"{COMMUNITY}/activities"
    tags = ["activities"]
    security = API_KEYS

    @post(
        "/",
        opt=requires(Action.WRITE_ACTIVITIES),
        status_code=200,
        operation_id="recordActivity",
        summary="Record one activity from another source (e.g. a Discord bot); needs an API "
        "key with activities:write. Idempotent on idempotency_key.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def record_activity(
        self, community_id: FromPath[str], data: JSONBody[ActivityIn], downstream: DownstreamDep
    ) -> ActivityRecorded:
        reply = await downstream.xp.RecordActivity(
            xp_pb2.RecordActivityRequest(activity=mappers.activity(community_id, data))
        )
        return mappers.activity_recorded(reply)


class AnalyticsController(Controller):
    path = f"{COMMUNITY}/analytics"
    tags = ["analytics"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.READ_ANALYTICS),
        operation_id="getCommunityAnalytics",
        summary="Per UTC day: activities (by kind), XP, active and new members, level-ups; "
        "and the window's top movers (admins; premium plan; every plan reads `/basic`)",
        description=(
            "The window is [since, until): until defaults to now, since to the start of the UTC "
            "day 29 days before, and it spans at most 366 days. Times without a zone are UTC."
        ),
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def analytics(
        self,
        community_id: FromPath[str],
        entitlements: EntitlementsDep,
        downstream: DownstreamDep,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
    ) -> Analytics:
        await entitlements.require_feature(community_id, Feature.ANALYTICS)
        return await full_analytics(downstream, community_id, since, until)

    @get(
        "/basic",
        opt=requires(Action.READ_ANALYTICS),
        operation_id="getCommunityBasicAnalytics",
        summary="The last 7 UTC days (today included): active members, XP, new members and "
        "level-ups per day, and the week's XP, new members and level-ups (admins; every plan)",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def basic(self, community_id: FromPath[str], downstream: DownstreamDep) -> BasicAnalytics:
        return await basic_analytics(downstream, community_id)
