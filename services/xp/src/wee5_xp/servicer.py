"""XpService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_xp.awarding import commit_awards
from wee5_xp.errors import InvalidActivity, InvalidAnalyticsRequest, InvalidCursor
from wee5_xp.imports import ImportedMember, MemberImporter
from wee5_xp.memberships import InvalidMembership, Memberships, MembershipUpdate
from wee5_xp.models import Membership
from wee5_xp.points import PointsAward, PointsService
from wee5_xp.service import COOLDOWN_CLAIMS, ActivityInput, ActivityResult, XpService

log = get_logger("wee5.xp")

_KINDS = {
    xp_pb2.ACTIVITY_KIND_MESSAGE: "message",
    xp_pb2.ACTIVITY_KIND_POST: "post",
    xp_pb2.ACTIVITY_KIND_REACTION: "reaction",
    xp_pb2.ACTIVITY_KIND_CUSTOM: "custom",
}
_SOURCES = {
    xp_pb2.SOURCE_WHOP: "whop",
    xp_pb2.SOURCE_DISCORD: "discord",
    xp_pb2.SOURCE_API: "api",
    xp_pb2.SOURCE_MEE6: "mee6",
}
_PERIODS = {
    xp_pb2.PERIOD_UNSPECIFIED: "all",
    xp_pb2.PERIOD_ALL: "all",
    xp_pb2.PERIOD_MONTH: "month",
    xp_pb2.PERIOD_WEEK: "week",
    xp_pb2.PERIOD_DAY: "day",
}
_OUTCOMES = {
    "awarded": xp_pb2.ACTIVITY_OUTCOME_AWARDED,
    "skipped": xp_pb2.ACTIVITY_OUTCOME_SKIPPED,
    "duplicate": xp_pb2.ACTIVITY_OUTCOME_DUPLICATE,
}
_SKIP_REASONS = {
    "cooldown": xp_pb2.SKIP_REASON_COOLDOWN,
    "no_xp_channel": xp_pb2.SKIP_REASON_NO_XP_CHANNEL,
    "too_short": xp_pb2.SKIP_REASON_TOO_SHORT,
    "bot_author": xp_pb2.SKIP_REASON_BOT_AUTHOR,
}
MAX_PAGE = 100


class XpServicer(xp_pb2_grpc.XpServiceServicer):
    def __init__(
        self,
        service: XpService,
        sessionmaker: async_sessionmaker[AsyncSession],
        points: PointsService | None = None,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.points = points or PointsService(service)
        self.importer = MemberImporter(service)
        self.memberships = Memberships()

    async def RecordActivity(
        self, request: xp_pb2.RecordActivityRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.RecordActivityResponse:
        activity = _activity_from_proto(request.activity)
        with bound_contextvars(community_id=activity.community_id):
            await self._learn_company(activity.community_id, request.activity.company_id)
            result = await self._record(activity)
        return xp_pb2.RecordActivityResponse(
            outcome=_OUTCOMES[result.outcome],
            skip_reason=_SKIP_REASONS.get(result.skip_reason or "", xp_pb2.SKIP_REASON_UNSPECIFIED),
            xp_awarded=result.xp_awarded,
            total_xp=result.total_xp,
            level=result.level,
            leveled_up=result.leveled_up,
        )

    async def _record(self, activity: ActivityInput) -> ActivityResult:
        session = self.sessionmaker()
        try:
            async with session.begin():
                result = await self.service.record_activity(session, activity)
        except BaseException:
            await self.service.cooldowns.release(session.info.get(COOLDOWN_CLAIMS, []))
            raise
        finally:
            await session.close()
        if result.standing is not None:
            try:
                await self.service.leaderboards.record(result.standing)
            except Exception:
                # Committed is committed: the board is rebuilt from Postgres when it is missing.
                log.exception("leaderboard update failed")
        return result

    async def _learn_company(self, community_id: str, company_id: str) -> None:
        if not company_id or self.memberships.knows(community_id, company_id):
            return
        async with self.sessionmaker.begin() as session:
            await self.memberships.learn_company(session, community_id, company_id)
        self.memberships.remember(community_id, company_id)

    async def SetMembership(
        self, request: xp_pb2.SetMembershipRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.SetMembershipResponse:
        given = request.membership
        if not given.HasField("updated_at"):
            raise InvalidMembership("membership.updated_at is required")
        update = MembershipUpdate(
            company_id=given.company_id,
            user_id=given.user_id,
            membership_id=given.membership_id,
            status=given.status,
            active=given.active,
            updated_at=given.updated_at.ToDatetime(UTC),
            community_id=request.community_id or None,
        )
        async with self.sessionmaker.begin() as session:
            stored, applied = await self.memberships.apply(session, update)
        if update.community_id:
            self.memberships.remember(update.community_id, update.company_id)
        log.info("membership", applied=applied, status=stored.status, active=stored.active)
        return xp_pb2.SetMembershipResponse(membership=_membership(stored), applied=applied)

    async def GetMembership(
        self, request: xp_pb2.GetMembershipRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.GetMembershipResponse:
        async with self.sessionmaker() as session:
            stored = await self.memberships.of_member(
                session, request.community_id, request.user_id
            )
        return xp_pb2.GetMembershipResponse(membership=_membership(stored))

    async def GetMember(
        self, request: xp_pb2.GetMemberRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.GetMemberResponse:
        async with self.sessionmaker() as session:
            card = await self.service.rank_card(session, request.community_id, request.user_id)
        member = card.member
        return xp_pb2.GetMemberResponse(
            member=xp_pb2.Member(
                community_id=member.community_id,
                user_id=member.user_id,
                xp=member.xp,
                level=member.level,
                rank=card.rank,
                xp_into_level=card.progress.xp_into_level,
                xp_for_next_level=card.progress.xp_for_next_level,
                progress=card.progress.ratio,
                totals=xp_pb2.ActivityTotals(
                    messages=member.messages,
                    posts=member.posts,
                    reactions=member.reactions,
                    custom=member.custom,
                ),
            )
        )

    async def GetLeaderboard(
        self, request: xp_pb2.GetLeaderboardRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.GetLeaderboardResponse:
        if not request.community_id:
            raise InvalidActivity("community_id is required")
        period = _PERIODS.get(request.period)
        if period is None:
            raise InvalidActivity("period must be all, month, week or day")
        limit = request.limit or 25
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidActivity(f"limit must be between 1 and {MAX_PAGE}")
        offset = _decode_cursor(request.cursor)
        async with self.sessionmaker() as session:
            rows = await self.service.leaderboard(
                session, request.community_id, period, offset, limit + 1
            )
            viewer = None
            if request.viewer_user_id:
                viewer = await self.service.leaderboard_entry(
                    session, request.community_id, period, request.viewer_user_id
                )
        response = xp_pb2.GetLeaderboardResponse(
            entries=[
                xp_pb2.LeaderboardEntry(
                    rank=row.rank, user_id=row.user_id, xp=row.xp, level=row.level
                )
                for row in rows[:limit]
            ],
            next_cursor=_encode_cursor(offset + limit) if len(rows) > limit else "",
        )
        if viewer is not None:
            response.viewer.CopyFrom(
                xp_pb2.LeaderboardEntry(
                    rank=viewer.rank, user_id=viewer.user_id, xp=viewer.xp, level=viewer.level
                )
            )
        return response

    async def GetAnalytics(
        self, request: xp_pb2.GetAnalyticsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.GetAnalyticsResponse:
        try:
            since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
            until = request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None
        except (OverflowError, ValueError):
            raise InvalidAnalyticsRequest(
                "since and until must fall in the years 1 to 9999"
            ) from None
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                days = await self.service.analytics(session, request.community_id, since, until)
        return xp_pb2.GetAnalyticsResponse(
            days=[
                xp_pb2.DailyActivity(
                    day=day.day.isoformat(),
                    activities=day.activities,
                    xp=day.xp,
                    active_members=day.active_members,
                )
                for day in days
            ]
        )

    async def AwardPoints(
        self, request: xp_pb2.AwardPointsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.AwardPointsResponse:
        """Points for an action; `points` 0 means the configured amount of `reason`."""
        award = PointsAward(
            community_id=request.community_id,
            user_id=request.user_id,
            reason=request.reason,
            idempotency_key=request.idempotency_key,
            points=request.points or None,
        )
        with bound_contextvars(community_id=award.community_id):
            result = await commit_awards(
                self.sessionmaker,
                self.service,
                lambda session: self.points.award(session, award),
            )
        return xp_pb2.AwardPointsResponse(
            duplicate=result.duplicate, total_xp=result.total_xp, level=result.level
        )

    async def ImportMembers(
        self, request: xp_pb2.ImportMembersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> xp_pb2.ImportMembersResponse:
        """Imports one batch (at most 1000 members); `imported` counts the members whose
        imported XP grew, so a repeated request answers 0."""
        source = _SOURCES.get(request.source)
        if source is None:
            raise InvalidActivity("source is required")
        members = [ImportedMember(m.user_id, m.xp, m.message_count) for m in request.members]
        with bound_contextvars(community_id=request.community_id):
            report = await commit_awards(
                self.sessionmaker,
                self.service,
                lambda session: self.importer.import_members(
                    session, request.community_id, source, members
                ),
            )
        return xp_pb2.ImportMembersResponse(imported=report.credited)


def _membership(stored: Membership) -> xp_pb2.Membership:
    message = xp_pb2.Membership(
        company_id=stored.company_id,
        user_id=stored.user_id,
        membership_id=stored.membership_id,
        status=stored.status,
        active=stored.active,
    )
    message.updated_at.FromDatetime(stored.updated_at)
    return message


def _activity_from_proto(message: xp_pb2.Activity) -> ActivityInput:
    kind = _KINDS.get(message.kind)
    if kind is None:
        raise InvalidActivity("activity.kind is required")
    source = _SOURCES.get(message.source)
    if source is None:
        raise InvalidActivity("activity.source is required")
    return ActivityInput(
        community_id=message.community_id,
        user_id=message.user_id,
        kind=kind,
        custom_kind=message.custom_kind or None,
        source=source,
        idempotency_key=message.idempotency_key,
        channel_id=message.channel_id or None,
        content_length=message.content_length,
        author_is_bot=message.author_is_bot,
        occurred_at=message.occurred_at.ToDatetime(tzinfo=UTC)
        if message.HasField("occurred_at")
        else None,
    )


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset = int(raw[1:]) if raw.startswith("o") else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if offset < 0:
        raise InvalidCursor()
    return offset
