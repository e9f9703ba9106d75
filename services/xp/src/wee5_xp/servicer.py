"""XpService over gRPC: protobuf in (`mappers.py`), the writes in service.py and the reads in
queries.py, protobuf out. Commits here, in one unit of work per call (`XpService.transaction`),
or in the group-committing batcher for activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.communities import validate_company_id, validate_member_id
from wee5_kit.errors import DomainError
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_kit.proto import timestamp_field
from wee5_xp.batching import ActivityBatcher
from wee5_xp.companies import CompanyBoards, CompanyBoardSetting
from wee5_xp.errors import (
    InvalidActivity,
    InvalidAnalyticsRequest,
    InvalidLeaderboardRequest,
    InvalidXpConfig,
    in_batch,
)
from wee5_xp.imports import ImportedMember, MemberImporter
from wee5_xp.levels import level_table
from wee5_xp.mappers import (
    SOURCES,
    activity_from_proto,
    activity_result_to_proto,
    analytics_to_proto,
    community_id_of,
    company_analytics_to_proto,
    company_board_to_proto,
    company_card_to_proto,
    config_from_proto,
    config_to_proto,
    curve_from_proto,
    day_of,
    from_history_token,
    from_leaderboard_cursor,
    history_token,
    leaderboard_cursor,
    leaderboard_row_to_proto,
    ledger_entry_to_proto,
    level_rows_to_proto,
    membership_to_proto,
    membership_update_from_proto,
    period_of,
    rank_card_to_proto,
)
from wee5_xp.memberships import Memberships
from wee5_xp.points import PointsAward, PointsService
from wee5_xp.queries import MAX_QUERY_LENGTH, XpQueries
from wee5_xp.rules import checked_curve
from wee5_xp.service import XpService

log = get_logger("wee5.xp")

MAX_PAGE = 100
MAX_BATCH_RPC = 1000
DEFAULT_PREVIEW_LEVELS = 20
MAX_PREVIEW_LEVELS = 100

Context = grpc.aio.ServicerContext[Any, Any]


class XpServicer(xp_pb2_grpc.XpServiceServicer):
    def __init__(
        self,
        service: XpService,
        sessionmaker: async_sessionmaker[AsyncSession],
        batcher: ActivityBatcher | None = None,
        points: PointsService | None = None,
    ) -> None:
        self.service = service
        self.queries = XpQueries(service)
        self.sessionmaker = sessionmaker
        self.batcher = batcher or ActivityBatcher(service)
        self.points = points or PointsService(service)
        self.importer = MemberImporter(service)
        self.memberships = Memberships(service.outbox)
        self.companies = CompanyBoards(service)

    async def RecordActivity(
        self, request: xp_pb2.RecordActivityRequest, context: Context
    ) -> xp_pb2.RecordActivityResponse:
        activity = activity_from_proto(request.activity)
        with bound_contextvars(community_id=activity.community_id):
            await self._learn_company(activity.community_id, request.activity.company_id)
            return activity_result_to_proto(await self.batcher.record(activity))

    async def RecordActivities(
        self, request: xp_pb2.RecordActivitiesRequest, context: Context
    ) -> xp_pb2.RecordActivitiesResponse:
        if len(request.activities) > MAX_BATCH_RPC:
            raise InvalidActivity(f"at most {MAX_BATCH_RPC} activities per call")
        activities = []
        for n, given in enumerate(request.activities):
            try:
                activities.append(activity_from_proto(given))
            except DomainError as error:
                raise in_batch(n, error) from error
        async with self.service.transaction() as session:
            await self.service.check_batch(session, activities)
        for given, activity in zip(request.activities, activities, strict=True):
            await self._learn_company(activity.community_id, given.company_id)
        # A member's activities count in the order given, a writer's share in one commit.
        results = await self.batcher.record_many(activities)
        return xp_pb2.RecordActivitiesResponse(
            results=[activity_result_to_proto(r) for r in results]
        )

    async def _learn_company(self, community_id: str, company_id: str) -> None:
        if not company_id or self.memberships.knows(community_id, company_id):
            return
        async with self.service.transaction() as session:
            await self.memberships.learn_company(session, community_id, company_id)

    async def SetMembership(
        self, request: xp_pb2.SetMembershipRequest, context: Context
    ) -> xp_pb2.SetMembershipResponse:
        update = membership_update_from_proto(request)
        async with self.service.transaction() as session:
            stored, applied = await self.memberships.apply(session, update)
        log.info("membership", applied=applied, status=stored.status, active=stored.active)
        return xp_pb2.SetMembershipResponse(membership=membership_to_proto(stored), applied=applied)

    async def SetMemberPrivacy(
        self, request: xp_pb2.SetMemberPrivacyRequest, context: Context
    ) -> xp_pb2.SetMemberPrivacyResponse:
        community_id = community_id_of(request.community_id)
        with bound_contextvars(community_id=community_id):
            async with self.service.transaction() as session:
                await self.service.set_privacy(
                    session, community_id, request.user_id, request.hidden_from_leaderboards
                )
        return xp_pb2.SetMemberPrivacyResponse(
            hidden_from_leaderboards=request.hidden_from_leaderboards
        )

    async def GetMembership(
        self, request: xp_pb2.GetMembershipRequest, context: Context
    ) -> xp_pb2.GetMembershipResponse:
        community_id = community_id_of(request.community_id)
        async with self.sessionmaker() as session:
            stored = await self.memberships.of_member(session, community_id, request.user_id)
        return xp_pb2.GetMembershipResponse(membership=membership_to_proto(stored))

    async def AdjustXp(
        self, request: xp_pb2.AdjustXpRequest, context: Context
    ) -> xp_pb2.AdjustXpResponse:
        community_id = community_id_of(request.community_id)
        with bound_contextvars(community_id=community_id):
            async with self.service.transaction() as session:
                result = await self.service.adjust_xp(
                    session,
                    community_id=community_id,
                    user_id=request.user_id,
                    delta=request.delta,
                    reason=request.reason,
                    actor=request.actor_user_id,
                    idempotency_key=request.idempotency_key,
                )
        return xp_pb2.AdjustXpResponse(
            total_xp=result.total_xp,
            level=result.level,
            duplicate=result.duplicate,
            previous_xp=result.previous_xp,
            previous_level=result.previous_level,
        )

    async def GetMember(
        self, request: xp_pb2.GetMemberRequest, context: Context
    ) -> xp_pb2.GetMemberResponse:
        community_id = community_id_of(request.community_id)
        async with self.sessionmaker() as session:
            card = await self.queries.rank_card(session, community_id, request.user_id)
        return xp_pb2.GetMemberResponse(member=rank_card_to_proto(card))

    async def GetLeaderboard(
        self, request: xp_pb2.GetLeaderboardRequest, context: Context
    ) -> xp_pb2.GetLeaderboardResponse:
        community_id = community_id_of(request.community_id)
        period = period_of(request.period)
        limit = request.limit or 25
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidActivity(f"limit must be between 1 and {MAX_PAGE}")
        at = day_of(request.at, "at") if request.at else None
        query = request.query.strip()
        if len(query) > MAX_QUERY_LENGTH:
            raise InvalidLeaderboardRequest(f"query is at most {MAX_QUERY_LENGTH} characters long")
        offset, cursor_day = from_leaderboard_cursor(request.cursor)
        # A cursor stays on the period it started in, even when that period ended meanwhile.
        at = cursor_day or at
        async with self.sessionmaker() as session:
            board = await self.queries.leaderboard(
                session, community_id, period, at, offset, limit, query
            )
            viewer = None
            if request.viewer_user_id:
                viewer = await self.queries.leaderboard_entry(
                    session, community_id, period, board.start, request.viewer_user_id
                )
        return xp_pb2.GetLeaderboardResponse(
            entries=[leaderboard_row_to_proto(row) for row in board.rows],
            next_cursor=leaderboard_cursor(offset + limit, board.start) if board.more else "",
            period_start=board.start.isoformat() if board.start else "",
            total=board.total,
            earliest_day=board.earliest.isoformat() if board.earliest else "",
            updating=board.updating,
            viewer=leaderboard_row_to_proto(viewer) if viewer else None,
            viewer_cursor=leaderboard_cursor((viewer.rank - 1) // limit * limit, board.start)
            if viewer and viewer.rank > limit and viewer.on_board
            else "",
        )

    async def GetHistory(
        self, request: xp_pb2.GetHistoryRequest, context: Context
    ) -> xp_pb2.GetHistoryResponse:
        community_id = community_id_of(request.community_id)
        before = from_history_token(request.page_token)
        async with self.sessionmaker() as session:
            page = await self.queries.history(
                session, community_id, request.user_id, request.page_size or 25, before
            )
        return xp_pb2.GetHistoryResponse(
            entries=[ledger_entry_to_proto(entry) for entry in page.entries],
            next_page_token=history_token(page.next_before_id),
        )

    async def GetXpConfig(
        self, request: xp_pb2.GetXpConfigRequest, context: Context
    ) -> xp_pb2.GetXpConfigResponse:
        community_id = community_id_of(request.community_id)
        async with self.sessionmaker() as session:
            self.service.configs.invalidate(community_id)  # read it fresh
            config = await self.service.config_of(session, community_id)
        return xp_pb2.GetXpConfigResponse(config=config_to_proto(config))

    async def UpdateXpConfig(
        self, request: xp_pb2.UpdateXpConfigRequest, context: Context
    ) -> xp_pb2.UpdateXpConfigResponse:
        community_id = community_id_of(request.community_id)
        config = config_from_proto(request.config)
        with bound_contextvars(community_id=community_id):
            async with self.service.transaction() as session:
                change = await self.service.update_config(session, community_id, config)
        return xp_pb2.UpdateXpConfigResponse(
            config=config_to_proto(change.after),
            previous=config_to_proto(change.before),
            levels_changed=change.levels_changed,
        )

    async def PreviewLevels(
        self, request: xp_pb2.PreviewLevelsRequest, context: Context
    ) -> xp_pb2.PreviewLevelsResponse:
        count = min(request.levels or DEFAULT_PREVIEW_LEVELS, MAX_PREVIEW_LEVELS)
        try:
            spec = checked_curve(curve_from_proto(request))
        except InvalidXpConfig as refused:
            return xp_pb2.PreviewLevelsResponse(errors=refused.errors)
        return level_rows_to_proto(level_table(spec.curve(), count))

    async def GetAnalytics(
        self, request: xp_pb2.GetAnalyticsRequest, context: Context
    ) -> xp_pb2.GetAnalyticsResponse:
        community_id = community_id_of(request.community_id)
        since, until = analytics_window_of(request)
        with bound_contextvars(community_id=community_id):
            async with self.sessionmaker() as session:
                analytics = await self.queries.analytics(session, community_id, since, until)
        return analytics_to_proto(analytics)

    async def GetCompanyAnalytics(
        self, request: xp_pb2.GetCompanyAnalyticsRequest, context: Context
    ) -> xp_pb2.GetCompanyAnalyticsResponse:
        since, until = analytics_window_of(request)
        with bound_contextvars(company_id=request.company_id):
            async with self.sessionmaker() as session:
                analytics = await self.queries.company_analytics(
                    session, request.company_id, since, until
                )
        return company_analytics_to_proto(analytics)

    async def AwardPoints(
        self, request: xp_pb2.AwardPointsRequest, context: Context
    ) -> xp_pb2.AwardPointsResponse:
        """Points for an action; `points` 0 means the configured amount of `reason`."""
        award = PointsAward(
            community_id=community_id_of(request.community_id),
            user_id=request.user_id,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            points=request.points or None,
        )
        with bound_contextvars(community_id=award.community_id):
            async with self.service.transaction() as session:
                result = await self.points.award(session, award)
        return xp_pb2.AwardPointsResponse(
            duplicate=result.duplicate, total_xp=result.total_xp, level=result.level
        )

    async def ImportMembers(
        self, request: xp_pb2.ImportMembersRequest, context: Context
    ) -> xp_pb2.ImportMembersResponse:
        """Imports one batch (at most 1000 members); `imported` counts the members whose
        imported XP grew, so a repeated request answers 0."""
        community_id = community_id_of(request.community_id)
        source = SOURCES.name_or_none(request.source)
        if source is None:
            raise InvalidActivity("source is required")
        members = [ImportedMember(m.user_id, m.xp, m.message_count) for m in request.members]
        with bound_contextvars(community_id=community_id):
            async with self.service.transaction() as session:
                report = await self.importer.import_members(session, community_id, source, members)
        return xp_pb2.ImportMembersResponse(imported=report.credited)

    # --- company boards ---------------------------------------------------------------------

    async def GetCompany(
        self, request: xp_pb2.GetCompanyRequest, context: Context
    ) -> xp_pb2.GetCompanyResponse:
        company_id = validate_company_id(request.company_id)
        async with self.sessionmaker() as session:
            communities = await self.companies.communities(session, company_id)
        return xp_pb2.GetCompanyResponse(
            communities=[
                xp_pb2.CompanyCommunity(
                    community_id=c.community_id, in_company_board=c.in_company_board
                )
                for c in communities
            ]
        )

    async def GetCompanyLeaderboard(
        self, request: xp_pb2.GetCompanyLeaderboardRequest, context: Context
    ) -> xp_pb2.GetCompanyLeaderboardResponse:
        company_id = validate_company_id(request.company_id)
        period = period_of(request.period)
        limit = request.limit or 25
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidLeaderboardRequest(f"limit must be between 1 and {MAX_PAGE}")
        offset, _ = from_leaderboard_cursor(request.cursor)
        async with self.sessionmaker() as session:
            board = await self.companies.board(session, company_id, period, offset, limit)
        next_cursor = leaderboard_cursor(offset + limit, board.start) if board.more else ""
        return company_board_to_proto(board, next_cursor)

    async def GetCompanyMember(
        self, request: xp_pb2.GetCompanyMemberRequest, context: Context
    ) -> xp_pb2.GetCompanyMemberResponse:
        company_id = validate_company_id(request.company_id)
        user_id = validate_member_id(request.user_id)
        async with self.sessionmaker() as session:
            card = await self.companies.card(session, company_id, user_id)
        return xp_pb2.GetCompanyMemberResponse(member=company_card_to_proto(card))

    async def GetCompanyBoardSetting(
        self, request: xp_pb2.GetCompanyBoardSettingRequest, context: Context
    ) -> xp_pb2.GetCompanyBoardSettingResponse:
        community_id = community_id_of(request.community_id)
        async with self.sessionmaker() as session:
            setting = await self.companies.setting(session, community_id)
        return xp_pb2.GetCompanyBoardSettingResponse(setting=_setting_to_proto(setting))

    async def SetCompanyBoardSetting(
        self, request: xp_pb2.SetCompanyBoardSettingRequest, context: Context
    ) -> xp_pb2.SetCompanyBoardSettingResponse:
        community_id = community_id_of(request.community_id)
        with bound_contextvars(community_id=community_id):
            async with self.service.transaction() as session:
                setting = await self.companies.set_in_company_board(
                    session, community_id, request.in_company_board
                )
        previous = setting.in_company_board != setting.changed
        return xp_pb2.SetCompanyBoardSettingResponse(
            setting=_setting_to_proto(setting), previous=previous
        )


def _setting_to_proto(setting: CompanyBoardSetting) -> xp_pb2.CompanyBoardSetting:
    return xp_pb2.CompanyBoardSetting(
        community_id=setting.community_id,
        company_id=setting.company_id,
        in_company_board=setting.in_company_board,
    )


def analytics_window_of(
    request: xp_pb2.GetAnalyticsRequest | xp_pb2.GetCompanyAnalyticsRequest,
) -> tuple[datetime | None, datetime | None]:
    """The `since` and `until` an analytics request names (either may be left out)."""
    try:
        return timestamp_field(request, "since"), timestamp_field(request, "until")
    except (OverflowError, ValueError):
        raise InvalidAnalyticsRequest("since and until must fall in the years 1 to 9999") from None
