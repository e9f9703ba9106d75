"""XpService over gRPC: protobuf in, the rules in service.py, protobuf out. Commits here
(through `XpService.transaction`, or the group-committing batcher for activities)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import UTC, date
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.xp.v1 import xp_pb2, xp_pb2_grpc
from wee5_kit.logging import bound_contextvars, get_logger
from wee5_xp.awarding import commit_awards
from wee5_xp.batching import ActivityBatcher
from wee5_xp.errors import (
    InvalidActivity,
    InvalidAnalyticsRequest,
    InvalidCursor,
    InvalidHistoryRequest,
    InvalidXpConfig,
)
from wee5_xp.imports import ImportedMember, MemberImporter
from wee5_xp.levels import PRESETS, SHAPES, CurveSpec, preset
from wee5_xp.memberships import InvalidMembership, Memberships, MembershipUpdate
from wee5_xp.models import LedgerEntry, Membership
from wee5_xp.points import PointsAward, PointsService
from wee5_xp.rules import Boost, XpConfig, XpRange
from wee5_xp.service import ActivityInput, ActivityResult, XpService

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
_SOURCE_ENUMS = {name: value for value, name in _SOURCES.items()}
_PERIODS = {
    xp_pb2.PERIOD_UNSPECIFIED: "all",
    xp_pb2.PERIOD_ALL: "all",
    xp_pb2.PERIOD_MONTH: "month",
    xp_pb2.PERIOD_WEEK: "week",
    xp_pb2.PERIOD_DAY: "day",
}
_PERIOD_ENUMS = {
    "month": xp_pb2.PERIOD_MONTH,
    "week": xp_pb2.PERIOD_WEEK,
    "day": xp_pb2.PERIOD_DAY,
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
MAX_BATCH_RPC = 1000

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
        self.sessionmaker = sessionmaker
        self.batcher = batcher or ActivityBatcher(service)
        self.points = points or PointsService(service)
        self.importer = MemberImporter(service)
        self.memberships = Memberships()

    async def RecordActivity(
        self, request: xp_pb2.RecordActivityRequest, context: Context
    ) -> xp_pb2.RecordActivityResponse:
        activity = _activity_from_proto(request.activity)
        with bound_contextvars(community_id=activity.community_id):
            await self._learn_company(activity.community_id, request.activity.company_id)
            return _activity_reply(await self._record(activity))

    async def RecordActivities(
        self, request: xp_pb2.RecordActivitiesRequest, context: Context
    ) -> xp_pb2.RecordActivitiesResponse:
        if len(request.activities) > MAX_BATCH_RPC:
            raise InvalidActivity(f"at most {MAX_BATCH_RPC} activities per call")
        activities = [_activity_from_proto(a) for a in request.activities]
        for given, activity in zip(request.activities, activities, strict=True):
            await self._learn_company(activity.community_id, given.company_id)
        # Queued in order, so a member's activities count in sequence (and share commits).
        results = await asyncio.gather(*(self._record(a) for a in activities))
        return xp_pb2.RecordActivitiesResponse(results=[_activity_reply(r) for r in results])

    async def _record(self, activity: ActivityInput) -> ActivityResult:
        return await self.batcher.record(activity)

    async def _learn_company(self, community_id: str, company_id: str) -> None:
        if not company_id or self.memberships.knows(community_id, company_id):
            return
        async with self.sessionmaker.begin() as session:
            await self.memberships.learn_company(session, community_id, company_id)
        self.memberships.remember(community_id, company_id)

    async def SetMembership(
        self, request: xp_pb2.SetMembershipRequest, context: Context
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
        self, request: xp_pb2.GetMembershipRequest, context: Context
    ) -> xp_pb2.GetMembershipResponse:
        async with self.sessionmaker() as session:
            stored = await self.memberships.of_member(
                session, request.community_id, request.user_id
            )
        return xp_pb2.GetMembershipResponse(membership=_membership(stored))

    async def AdjustXp(
        self, request: xp_pb2.AdjustXpRequest, context: Context
    ) -> xp_pb2.AdjustXpResponse:
        with bound_contextvars(community_id=request.community_id):
            async with self.service.transaction() as session:
                result = await self.service.adjust_xp(
                    session,
                    community_id=request.community_id,
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
        async with self.sessionmaker() as session:
            card = await self.service.rank_card(session, request.community_id, request.user_id)
        member = card.member
        reply = xp_pb2.Member(
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
            streak_days=card.current_streak,
            longest_streak_days=member.longest_streak,
            custom_totals=card.custom_totals,
            periods=[
                xp_pb2.PeriodStanding(
                    period=_PERIOD_ENUMS[p.period],
                    period_start=p.start.isoformat(),
                    rank=p.rank,
                    xp=p.xp,
                )
                for p in card.periods
            ],
        )
        if member.last_activity_at is not None:
            reply.last_activity_at.FromDatetime(member.last_activity_at)
        return xp_pb2.GetMemberResponse(member=reply)

    async def GetLeaderboard(
        self, request: xp_pb2.GetLeaderboardRequest, context: Context
    ) -> xp_pb2.GetLeaderboardResponse:
        if not request.community_id:
            raise InvalidActivity("community_id is required")
        period = _PERIODS.get(request.period)
        if period is None:
            raise InvalidActivity("period must be all, month, week or day")
        limit = request.limit or 25
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidActivity(f"limit must be between 1 and {MAX_PAGE}")
        at = _parse_day(request.at, "at") if request.at else None
        offset, cursor_day = _decode_cursor(request.cursor)
        # A cursor stays on the period it started in, even when that period ended meanwhile.
        at = cursor_day or at
        async with self.sessionmaker() as session:
            board = await self.service.leaderboard(
                session, request.community_id, period, at, offset, limit + 1
            )
            viewer = None
            if request.viewer_user_id:
                viewer = await self.service.leaderboard_entry(
                    session, request.community_id, period, board.start, request.viewer_user_id
                )
        rows = board.rows
        response = xp_pb2.GetLeaderboardResponse(
            entries=[
                xp_pb2.LeaderboardEntry(
                    rank=row.rank, user_id=row.user_id, xp=row.xp, level=row.level
                )
                for row in rows[:limit]
            ],
            next_cursor=_encode_cursor(offset + limit, board.start) if len(rows) > limit else "",
            period_start=board.start.isoformat() if board.start else "",
        )
        if viewer is not None:
            response.viewer.CopyFrom(
                xp_pb2.LeaderboardEntry(
                    rank=viewer.rank, user_id=viewer.user_id, xp=viewer.xp, level=viewer.level
                )
            )
        return response

    async def GetHistory(
        self, request: xp_pb2.GetHistoryRequest, context: Context
    ) -> xp_pb2.GetHistoryResponse:
        before = None
        if request.page_token:
            try:
                before = int(request.page_token)
            except ValueError:
                raise InvalidHistoryRequest("page_token is not one this history returned") from None
        async with self.sessionmaker() as session:
            entries, next_id = await self.service.history(
                session, request.community_id, request.user_id, request.page_size or 25, before
            )
        return xp_pb2.GetHistoryResponse(
            entries=[_ledger_entry(entry) for entry in entries],
            next_page_token=str(next_id) if next_id is not None else "",
        )

    async def GetXpConfig(
        self, request: xp_pb2.GetXpConfigRequest, context: Context
    ) -> xp_pb2.GetXpConfigResponse:
        if not request.community_id:
            raise InvalidActivity("community_id is required")
        async with self.sessionmaker() as session:
            self.service.configs.invalidate(request.community_id)  # read it fresh
            config = await self.service.config_of(session, request.community_id)
        return xp_pb2.GetXpConfigResponse(config=config_to_proto(config))

    async def UpdateXpConfig(
        self, request: xp_pb2.UpdateXpConfigRequest, context: Context
    ) -> xp_pb2.UpdateXpConfigResponse:
        config = config_from_proto(request.config)
        with bound_contextvars(community_id=request.community_id):
            async with self.service.transaction() as session:
                change = await self.service.update_config(session, request.community_id, config)
        return xp_pb2.UpdateXpConfigResponse(
            config=config_to_proto(change.after),
            previous=config_to_proto(change.before),
            levels_changed=change.levels_changed,
        )

    async def GetAnalytics(
        self, request: xp_pb2.GetAnalyticsRequest, context: Context
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
                analytics = await self.service.analytics(
                    session, request.community_id, since, until
                )
        return xp_pb2.GetAnalyticsResponse(
            days=[
                xp_pb2.DailyActivity(
                    day=day.day.isoformat(),
                    activities=day.activities,
                    xp=day.xp,
                    active_members=day.active_members,
                    activities_by_kind=day.by_kind,
                    new_members=day.new_members,
                    level_ups=day.level_ups,
                )
                for day in analytics.days
            ],
            top_movers=[xp_pb2.Mover(user_id=u, xp=xp) for u, xp in analytics.top_movers],
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


def _activity_reply(result: ActivityResult) -> xp_pb2.RecordActivityResponse:
    return xp_pb2.RecordActivityResponse(
        outcome=_OUTCOMES[result.outcome],
        skip_reason=_SKIP_REASONS.get(result.skip_reason or "", xp_pb2.SKIP_REASON_UNSPECIFIED),
        xp_awarded=result.xp_awarded,
        total_xp=result.total_xp,
        level=result.level,
        leveled_up=result.leveled_up,
    )


def _ledger_entry(entry: LedgerEntry) -> xp_pb2.LedgerEntry:
    message = xp_pb2.LedgerEntry(
        id=entry.id,
        delta=entry.delta,
        reason=entry.reason,
        source=_SOURCE_ENUMS.get(entry.source, xp_pb2.SOURCE_UNSPECIFIED),
        balance_after=entry.balance_after,
        source_name=entry.source,
        level_after=entry.level_after or 0,
        actor=entry.actor or "",
    )
    message.created_at.FromDatetime(entry.created_at)
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


def config_to_proto(config: XpConfig) -> xp_pb2.XpConfig:
    def rng(rate: XpRange) -> xp_pb2.XpRange:
        return xp_pb2.XpRange(min=rate.min, max=rate.max)

    message = xp_pb2.XpConfig(
        message=rng(config.rates["message"]),
        post=rng(config.rates["post"]),
        reaction=rng(config.rates["reaction"]),
        cooldown_seconds=config.cooldown_seconds,
        min_message_length=config.min_message_length,
        no_xp_channel_ids=sorted(config.no_xp_channels),
        curve=config.curve.preset or "custom",
        max_level=config.curve.max_level,
        custom_kinds={name: rng(rate) for name, rate in config.custom_kinds.items()},
        channel_multipliers=config.channel_multipliers,
        level_curve=xp_pb2.LevelCurve(
            shape=config.curve.shape,
            coefficients=list(config.curve.coefficients),
            first_level=config.curve.first_level,
        ),
        timezone=config.timezone,
    )
    for boost in config.boosts:
        window = message.boosts.add(multiplier=boost.multiplier, name=boost.name)
        window.starts_at.FromDatetime(boost.starts_at)
        window.ends_at.FromDatetime(boost.ends_at)
    return message


def config_from_proto(message: xp_pb2.XpConfig) -> XpConfig:
    """The config a request asks for (not validated yet: `XpConfig.validate` names every
    field out of bounds)."""
    max_level = message.max_level or 1000
    name = message.curve or "default"
    if name == "custom":
        spec = message.level_curve
        if spec.shape not in SHAPES:
            raise InvalidXpConfig({"curve.shape": f"must be one of {', '.join(SHAPES)}"})
        curve = CurveSpec(
            spec.shape, tuple(spec.coefficients), spec.first_level, max_level, preset=None
        )
    elif name in PRESETS:
        curve = preset(name, max_level)
    else:
        raise InvalidXpConfig({"curve": f"must be custom or one of {', '.join(PRESETS)}"})
    boosts = []
    for i, window in enumerate(message.boosts):
        if not (window.HasField("starts_at") and window.HasField("ends_at")):
            raise InvalidXpConfig({f"boosts[{i}]": "starts_at and ends_at are required"})
        boosts.append(
            Boost(
                window.starts_at.ToDatetime(tzinfo=UTC),
                window.ends_at.ToDatetime(tzinfo=UTC),
                window.multiplier,
                window.name,
            )
        )
    return XpConfig(
        rates={
            "message": XpRange(message.message.min, message.message.max),
            "post": XpRange(message.post.min, message.post.max),
            "reaction": XpRange(message.reaction.min, message.reaction.max),
        },
        custom_kinds={k: XpRange(v.min, v.max) for k, v in message.custom_kinds.items()},
        cooldown_seconds=message.cooldown_seconds,
        min_message_length=message.min_message_length,
        no_xp_channels=frozenset(message.no_xp_channel_ids),
        channel_multipliers=dict(message.channel_multipliers),
        boosts=tuple(boosts),
        curve=curve,
        timezone=message.timezone or "UTC",
    )


def _parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidActivity(f"{name} must be a date YYYY-MM-DD") from None


def _encode_cursor(offset: int, start: date | None) -> str:
    raw = f"o{offset}:{start.isoformat() if start else ''}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, date | None]:
    """(offset, first day of the period the cursor's pages are from)."""
    if not cursor:
        return 0, None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        head, _, day = raw.partition(":")
        offset = int(head[1:]) if head.startswith("o") else -1
        start = date.fromisoformat(day) if day else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if offset < 0:
        raise InvalidCursor()
    return offset, start
