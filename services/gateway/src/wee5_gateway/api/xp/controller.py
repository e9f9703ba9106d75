"""Routes of the xp context, all served by xp: leaderboards, rank cards and XP history
(members), the XP rules and adjustments (admins), points and imports, the API-key activity
intake and analytics. Admin writes are audited around the call (core/audit.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, QueryParameter

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.webhooks.intake import activity_sender
from wee5_gateway.api.xp import mappers, rules
from wee5_gateway.api.xp.analytics import basic_analytics, full_analytics
from wee5_gateway.api.xp.boards import (
    DEFAULT_VISIBILITY,
    PublicBoards,
    board_audience,
    card_audience,
    provide_boards,
)
from wee5_gateway.api.xp.history_access import history_visibility, require_history_reader
from wee5_gateway.api.xp.reads import (
    read_card,
    read_history,
    read_leaderboard,
)
from wee5_gateway.api.xp.schemas import (
    DEFAULT_HISTORY_VISIBILITY,
    ActivityBatchIn,
    ActivityBatchRecorded,
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
from wee5_gateway.core.access import Access, Action, provide_access, requires
from wee5_gateway.core.audit import Auditor
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
    Sessions,
    SessionsDep,
)
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.merge_patch import PATCH_DESCRIPTION, MergePatch, patch_body, patched
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import Conflict, problem_responses
from wee5_gateway.core.protection.rate_limits import spend_more
from wee5_gateway.db.repository import LeaderboardSettingsRepository

MAX_LEADERBOARD_PAGE = 100
MAX_NAME_SEARCH = 100
PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_LEADERBOARD_PAGE)]
ACTIVITY_EXAMPLE = {
    "kind": "message",
    "user_id": "123456789012345678",
    "idempotency_key": "discord:msg:1234567890",
    "channel_id": "general",
    "content_length": 42,
}


class CommunityController(Controller):
    path = COMMUNITY
    tags = ["communities"]
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @get(
        "/leaderboard",
        opt=requires(Action.READ_COMMUNITY, audience=board_audience),
        summary="Ranked members of a community for a period (members; anyone on a public "
        "board, admins only on an admins-only one)",
        description="Entries `{rank, user_id, xp, level}` with display names, ranked by XP in the "
        "period (`all`, `month`, `week` or `day`, in the community's time zone); `at` "
        "shows a past period, `search` filters by name. Pages with `cursor`. `me` is "
        "the caller's own entry when they are a member on the board. Who may read it "
        "is the community's choice (leaderboard settings).",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def leaderboard(
        self,
        request: Request[Any, Any, Any],
        period: FromQuery[Period] = "all",
        limit: PageSize = 25,
        cursor: FromQuery[str | None] = None,
        at: Annotated[
            date | None,
            QueryParameter(
                description="A day inside a past period to show (e.g. last week's winners); "
                "default: the current period. From `earliest_day` (the period before the "
                "community's first XP) to today; another day is a 400"
            ),
        ] = None,
        search: Annotated[
            str | None,
            QueryParameter(
                max_length=MAX_NAME_SEARCH,
                description="Only members whose display name or username contains this "
                "(case-insensitive), each with their rank on the whole board",
            ),
        ] = None,
    ) -> Leaderboard:
        access, downstream, boards = _hot_read_dependencies(request)
        return await read_leaderboard(
            downstream, access, boards, period, limit=limit, cursor=cursor, at=at, search=search
        )

    @get(
        "/members/{user_id:str}",
        opt=requires(Action.READ_COMMUNITY),
        summary="Rank card of one member",
        description="XP, level, rank, progress to the next level, activity totals, streak, badges "
        "and per-period ranks of one member. Members hidden from boards are 404 to "
        "others. 404 for someone with no XP here.",
        responses=problem_responses(401, 403, 404, 503, 504),
    )
    async def member(self, request: Request[Any, Any, Any], user_id: FromPath[str]) -> MemberCard:
        access, downstream, boards = _hot_read_dependencies(request)
        return await read_card(downstream, access, boards, user_id)

    @get(
        "/members/{user_id:str}/card.png",
        opt=requires(Action.READ_COMMUNITY, audience=card_audience),
        operation_id="getMemberCardImage",
        media_type="image/png",
        summary="Rank card of one member as a 934x282 PNG (members; anyone on a public board)",
        description="The same card as `GET .../members/{user_id}`, drawn: avatar (or initials), "
        "name, rank, level, progress to the next level and up to six badges. Carries an ETag; "
        "a matching `If-None-Match` is answered 304. Cacheable for 60 s: publicly on a public "
        "board, else privately.",
        responses={
            304: ResponseSpec(None, description="Not Modified: the If-None-Match ETag is current"),
            **problem_responses(401, 403, 404, 503, 504),
        },
    )
    async def member_card_image(
        self,
        request: Request[Any, Any, Any],
        community_id: FromPath[str],
        user_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        boards: NamedDependency[PublicBoards],
    ) -> Response[bytes]:
        # Imported here: Pillow and the fonts load with the first card image, not at startup.
        from wee5_gateway.web import rank_card

        card = await read_card(downstream, access, boards, user_id)
        rank_cards = rank_card.provide_rank_cards(request.app.state)
        picture = await rank_cards.picture(card)
        # Only a card anyone may see is left to shared caches (a hidden member's own is not).
        public = (
            not card.hidden_from_leaderboards and await boards.visibility(community_id) == "public"
        )
        headers = {
            "ETag": picture.etag,
            "Cache-Control": f"{'public' if public else 'private'}, max-age=60",
        }
        if rank_card.unchanged(request.headers.get("if-none-match"), picture.etag):
            return Response(b"", status_code=304, headers=headers)
        return Response(await rank_cards.png(picture), media_type="image/png", headers=headers)

    @get(
        "/members/{user_id:str}/history",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getMemberHistory",
        summary="A member's XP ledger, newest first (that member and admins; every member "
        "when the community shows histories to members)",
        description="Each entry is one change of the member's XP: what earned it (or the "
        "admin's reason), how much, and when. Other members get 403 (`history-private`) unless "
        "the community set `history_visibility: members` in its leaderboard settings; the "
        "totals stay visible to them on the board and the rank card. Pages with `cursor`.",
        responses=problem_responses(400, 401, 403, 404, 503, 504),
    )
    async def history(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        access: AccessDep,
        sessionmaker: SessionsDep,
        downstream: DownstreamDep,
        limit: PageSize = 25,
        cursor: FromQuery[str | None] = None,
    ) -> History:
        await require_history_reader(access, sessionmaker, user_id)
        return await read_history(downstream, community_id, user_id, limit, cursor)

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
        data: Annotated[MemberPrivacyIn, body_example({"hidden_from_leaderboards": True})],
        access: AccessDep,
        downstream: DownstreamDep,
        boards: NamedDependency[PublicBoards],
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
        boards.changed(community_id)
        return MemberPrivacy(community_id, user_id, reply.hidden_from_leaderboards)


def _hot_read_dependencies(
    request: Request[Any, Any, Any],
) -> tuple[Access, Downstream, PublicBoards]:
    """What the board and card reads need, taken from the request by hand: Litestar resolves
    several dependencies of one route in a task group of their own, one task each, which
    cost these two busiest routes a tenth of their time (profiled), sync as they all are."""
    state = request.app.state
    return provide_access(request), cast(Downstream, state.downstream), provide_boards(state)


class LeaderboardSettingsController(Controller):
    path = f"{COMMUNITY}/leaderboard-settings"
    tags = ["xp"]
    security = ACCOUNTS_OR_KEYS
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @get(
        "/",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getLeaderboardSettings",
        summary="Who may read the community's leaderboard (public, members or admins) and "
        "its members' XP histories",
        description="`visibility`: who reads the leaderboard (public, members, admins); "
        "`history_visibility`: who reads a member's XP history besides that member and"
        " the admins (`self_and_admins`, the default, or `members`).",
        responses=problem_responses(400, 401, 403),
    )
    async def get_settings(
        self,
        community_id: FromPath[str],
        boards: NamedDependency[PublicBoards],
        sessionmaker: SessionsDep,
    ) -> LeaderboardSettings:
        return await _read_leaderboard_settings(community_id, boards, sessionmaker)

    @put(
        "/",
        opt=requires(Action.MANAGE_LEADERBOARD),
        security=ACCOUNTS,
        operation_id="updateLeaderboardSettings",
        summary="Make the leaderboard public (readable without signing in), members-only "
        "(the default) or admins-only, and choose who reads members' XP histories (admins; "
        "audited)",
        description="Replaces both settings: `history_visibility` left out goes back to "
        "`self_and_admins`. `PATCH` changes one and keeps the other.",
        responses=problem_responses(400, 401, 403),
    )
    async def update_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[
            LeaderboardSettingsIn,
            body_example({"visibility": "public", "history_visibility": "self_and_admins"}),
        ],
        access: AccessDep,
        sessionmaker: SessionsDep,
        boards: NamedDependency[PublicBoards],
        audit: AuditorDep,
    ) -> LeaderboardSettings:
        return await _write_leaderboard_settings(
            community_id, data, access, sessionmaker, boards, audit
        )

    @patch(
        "/",
        opt=requires(Action.MANAGE_LEADERBOARD),
        security=ACCOUNTS,
        operation_id="patchLeaderboardSettings",
        summary="Change who reads the leaderboard or members' XP histories, keeping the other "
        "(admins; audited)",
        description=PATCH_DESCRIPTION,
        responses=problem_responses(400, 401, 403),
    )
    async def patch_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[MergePatch, patch_body({"history_visibility": "members"})],
        access: AccessDep,
        sessionmaker: SessionsDep,
        boards: NamedDependency[PublicBoards],
        audit: AuditorDep,
    ) -> LeaderboardSettings:
        current = await _read_leaderboard_settings(community_id, boards, sessionmaker)
        body = patched(current, data, LeaderboardSettingsIn)
        return await _write_leaderboard_settings(
            community_id, body, access, sessionmaker, boards, audit
        )


async def _read_leaderboard_settings(
    community_id: str, boards: PublicBoards, sessionmaker: Sessions
) -> LeaderboardSettings:
    return LeaderboardSettings(
        community_id,
        await boards.visibility(community_id),
        await history_visibility(sessionmaker, community_id),
    )


async def _write_leaderboard_settings(
    community_id: str,
    data: LeaderboardSettingsIn,
    access: Access,
    sessionmaker: Sessions,
    boards: PublicBoards,
    audit: Auditor,
) -> LeaderboardSettings:
    """Replaces both settings, audited (PUT, and PATCH once merged)."""
    async with sessionmaker.begin() as session:
        stored = LeaderboardSettingsRepository(session)
        before = await stored.settings_for_update(community_id)
        visibility, history = before or (DEFAULT_VISIBILITY, DEFAULT_HISTORY_VISIBILITY)
        await stored.set_visibility(
            community_id,
            data.visibility,
            access.principal.account_id,
            history_visibility=data.history_visibility,
        )
        await audit.record(
            session,
            action="leaderboard_settings.changed",
            target=f"community:{community_id}",
            before={"visibility": visibility, "history_visibility": history},
            after={"visibility": data.visibility, "history_visibility": data.history_visibility},
        )
    boards.forget_visibility(community_id)
    return LeaderboardSettings(community_id, data.visibility, data.history_visibility)


class XpConfigController(Controller):
    path = f"{COMMUNITY}/xp-config"
    tags = ["xp"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.MANAGE_XP_CONFIG),
        operation_id="getXpConfig",
        summary="The community's XP rules: XP per kind, cooldown, channels, boosts, level curve",
        description="The rules in force: XP ranges per activity kind (and custom kinds), cooldown,"
        " minimum message length, channels without XP and channel multipliers, boosts,"
        " level curve, maximum level and time zone (admins, API keys with xp:admin).",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_config(
        self, community_id: FromPath[str], downstream: DownstreamDep
    ) -> XpConfigView:
        return await rules.read_config(downstream, community_id)

    @put(
        "/",
        opt=requires(Action.MANAGE_XP_CONFIG),
        operation_id="updateXpConfig",
        summary="Replace the community's XP rules (admins; premium plan; audited). A new level "
        "curve recomputes every member's level; rewards of levels reached before are never "
        "granted again.",
        description="The whole rule set is replaced: fields left out go back to their defaults "
        "(use `PATCH` to change a few). Free communities get 402 (`plan-required`) "
        "with the plan that unlocks it.",
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def update_config(
        self,
        community_id: FromPath[str],
        data: Annotated[
            XpConfigIn,
            body_example(
                {
                    "message": {"min": 15, "max": 25},
                    "post": {"min": 15, "max": 25},
                    "reaction": {"min": 5, "max": 5},
                    "cooldown_seconds": 60,
                    "curve": {"preset": "default"},
                    "timezone": "Europe/Berlin",
                }
            ),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> XpConfigChanged:
        return await rules.update_config(downstream, entitlements, audit, community_id, data)

    @patch(
        "/",
        opt=requires(Action.MANAGE_XP_CONFIG),
        operation_id="patchXpConfig",
        summary="Change some of the community's XP rules, keeping the others (admins; premium "
        "plan; audited)",
        description=f'{PATCH_DESCRIPTION} E.g. `{{"cooldown_seconds": 30}}` changes only '
        'the cooldown; `{"curve": null}` goes back to the default level curve.',
        responses=problem_responses(400, 401, 402, 403, 503, 504),
    )
    async def patch_config(
        self,
        community_id: FromPath[str],
        data: Annotated[
            MergePatch, patch_body({"cooldown_seconds": 30, "message": {"min": 10, "max": 25}})
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> XpConfigChanged:
        current = await rules.read_config(downstream, community_id)
        body = patched(current, data, XpConfigIn)
        return await rules.update_config(downstream, entitlements, audit, community_id, body)


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
        description="For corrections and manual rewards: the delta (negative to take away) and "
        "a reason land in the member's ledger and the audit log. One that would take the total "
        "below 0 is a 409 (`adjustment-below-zero`). The same `idempotency_key` again changes "
        "nothing.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def adjust(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        data: Annotated[
            XpAdjustmentIn,
            body_example(
                {"delta": -50, "reason": "spam in #general", "idempotency_key": "adj-2026-12-03-1"}
            ),
        ],
        access: AccessDep,
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> XpAdjusted:
        return await rules.adjust_xp(
            downstream, audit, access.principal, community_id, user_id, data
        )


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
        description="Points for an action the community rewards (`intro`, …) or a number of "
        "points, recorded in the member's XP ledger. Sending the same "
        "`idempotency_key` again changes nothing and answers the current total.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def award_points(
        self,
        community_id: FromPath[str],
        data: Annotated[
            PointsIn,
            body_example(
                {
                    "user_id": "user_abc123",
                    "reason": "intro",
                    "idempotency_key": "intro:user_abc123",
                }
            ),
        ],
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
        description="For communities moving from another bot (e.g. MEE6): each member's XP (and "
        "message count) from the `source`. Repeating an import is safe: only growth "
        "since the last import is added.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def import_members(
        self,
        community_id: FromPath[str],
        data: Annotated[
            ImportIn,
            body_example(
                {
                    "source": "mee6",
                    "members": [
                        {"user_id": "123456789012345678", "xp": 4675, "message_count": 230}
                    ],
                }
            ),
        ],
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
        description="One message, forum post, reaction or custom activity of a member, earning XP "
        "by the community's rules (cooldown, channels, boosts). The answer says "
        "whether it was awarded, skipped (and why) or a duplicate of an earlier "
        "`idempotency_key`.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def record_activity(
        self,
        community_id: FromPath[str],
        data: Annotated[ActivityIn, body_example(ACTIVITY_EXAMPLE)],
        state: State,
    ) -> ActivityRecorded:
        # Shares calls to xp with the webhooks: what arrives together leaves in one call.
        reply = await activity_sender(state).record(mappers.activity(community_id, data))
        return mappers.activity_recorded(reply)

    @post(
        "/batch",
        opt=requires(Action.WRITE_ACTIVITIES),
        status_code=200,
        operation_id="recordActivities",
        summary="Record up to 1,000 activities in one call (e.g. a bot's backlog); needs an API "
        "key with activities:write. Idempotent per item on its idempotency_key.",
        description="Each item is what `POST …/activities` takes. The answer lists one outcome "
        "per item, in the order sent (`awarded`, `skipped` with its reason, or `duplicate`); a "
        "key repeated inside the batch is a `duplicate` the second time and counts once, so "
        "sending the same batch again changes nothing. The batch is checked whole before "
        "anything is recorded: an empty list, more than 1,000 items or one invalid item "
        "(named by its index, e.g. `activities[3].user_id`) is a 400. Each activity spends one "
        "unit of the key's `activities` rate limit (the single intake's), so a batch never "
        "buys more activities than single calls would; over it, 429 and nothing is recorded.",
        responses=problem_responses(400, 401, 403, 429, 503, 504),
    )
    async def record_activities(
        self,
        request: Request[Any, Any, Any],
        community_id: FromPath[str],
        data: Annotated[ActivityBatchIn, body_example({"activities": [ACTIVITY_EXAMPLE]})],
        downstream: DownstreamDep,
    ) -> ActivityBatchRecorded:
        await spend_more(request, len(data.activities) - 1, "activities")
        reply = await downstream.xp.RecordActivities(mappers.activity_batch(community_id, data))
        return mappers.activity_batch_recorded(reply)


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
        description="What every plan's dashboard shows; the full analytics (any window, top "
        "movers) need premium.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def basic(self, community_id: FromPath[str], downstream: DownstreamDep) -> BasicAnalytics:
        return await basic_analytics(downstream, community_id)
