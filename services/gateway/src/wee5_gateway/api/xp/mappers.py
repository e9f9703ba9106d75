"""protobuf <-> the xp context's bodies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

from wee5.xp.v1 import xp_pb2
from wee5_gateway.api.rewards.schemas import CardBadge
from wee5_gateway.api.xp.schemas import (
    ActivityBatchIn,
    ActivityBatchRecorded,
    ActivityIn,
    ActivityRecorded,
    ActivityTotals,
    Analytics,
    Boost,
    DailyActivity,
    History,
    HistoryEntry,
    Leaderboard,
    LeaderboardEntry,
    LevelCurve,
    MemberCard,
    Mover,
    Period,
    PeriodStanding,
    XpConfigIn,
    XpConfigView,
    XpRange,
)
from wee5_gateway.core.params import timestamp_param
from wee5_gateway.core.problems import reply_name
from wee5_kit.proto import EnumCodec, from_timestamp, timestamp_field, to_timestamp

PERIODS = EnumCodec(xp_pb2.Period)
SOURCES = EnumCodec(xp_pb2.Source)
ACTIVITY_KINDS = EnumCodec(xp_pb2.ActivityKind)
ACTIVITY_OUTCOMES = EnumCodec(xp_pb2.ActivityOutcome)
SKIP_REASONS = EnumCodec(xp_pb2.SkipReason)


def _entry(entry: xp_pb2.LeaderboardEntry) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=entry.rank,
        user_id=entry.user_id,
        xp=entry.xp,
        level=entry.level,
        display_name=entry.profile.display_name or None,
        username=entry.profile.username or None,
        avatar_url=entry.profile.avatar_url or None,
        progress=entry.progress,
        rank_approximate=entry.rank_approximate,
    )


def leaderboard(
    community_id: str, period: Period, reply: xp_pb2.GetLeaderboardResponse
) -> Leaderboard:
    return Leaderboard(
        community_id=community_id,
        period=period,
        period_start=date.fromisoformat(reply.period_start) if reply.period_start else None,
        entries=[_entry(e) for e in reply.entries],
        next_cursor=reply.next_cursor or None,
        me=_entry(reply.viewer) if reply.HasField("viewer") else None,
        me_cursor=reply.viewer_cursor or None,
        earliest_day=date.fromisoformat(reply.earliest_day) if reply.earliest_day else None,
        updating=reply.updating,
    )


def member_card(m: xp_pb2.Member, badges: list[CardBadge]) -> MemberCard:
    return MemberCard(
        community_id=m.community_id,
        user_id=m.user_id,
        xp=m.xp,
        level=m.level,
        rank=m.rank,
        xp_into_level=m.xp_into_level,
        xp_for_next_level=m.xp_for_next_level,
        progress=m.progress,
        totals=ActivityTotals(
            messages=m.totals.messages,
            posts=m.totals.posts,
            reactions=m.totals.reactions,
            custom=m.totals.custom,
        ),
        streak_days=m.streak_days,
        badges=badges,
        longest_streak_days=m.longest_streak_days,
        last_activity_at=timestamp_field(m, "last_activity_at"),
        periods={
            reply_name(PERIODS, p.period): PeriodStanding(
                period_start=date.fromisoformat(p.period_start), rank=p.rank, xp=p.xp
            )
            for p in m.periods
        },
        custom_totals=dict(m.custom_totals),
        display_name=m.profile.display_name or None,
        username=m.profile.username or None,
        avatar_url=m.profile.avatar_url or None,
        hidden_from_leaderboards=m.hidden_from_leaderboards,
        updating=m.updating,
        rank_approximate=m.rank_approximate,
    )


def history(community_id: str, user_id: str, reply: xp_pb2.GetHistoryResponse) -> History:
    return History(
        community_id=community_id,
        user_id=user_id,
        entries=[
            HistoryEntry(
                id=e.id,
                delta=e.delta,
                reason=e.reason,
                source=e.source_name,
                balance_after=e.balance_after,
                level_after=e.level_after,
                created_at=from_timestamp(e.created_at),
            )
            for e in reply.entries
        ],
        next_cursor=reply.next_page_token or None,
    )


def config_to_proto(body: XpConfigIn) -> xp_pb2.XpConfig:
    def rng(rate: XpRange) -> xp_pb2.XpRange:
        return xp_pb2.XpRange(min=rate.min, max=rate.max)

    config = xp_pb2.XpConfig(
        message=rng(body.message),
        post=rng(body.post),
        reaction=rng(body.reaction),
        cooldown_seconds=body.cooldown_seconds,
        min_message_length=body.min_message_length,
        no_xp_channel_ids=body.no_xp_channel_ids,
        curve=body.curve.preset,
        max_level=body.max_level,
        custom_kinds={name: rng(rate) for name, rate in body.custom_kinds.items()},
        channel_multipliers=body.channel_multipliers,
        level_curve=level_curve_to_proto(body.curve),
        timezone=body.timezone,
    )
    for boost in body.boosts:
        config.boosts.add(
            multiplier=boost.multiplier,
            name=boost.name,
            starts_at=to_timestamp(boost.starts_at),
            ends_at=to_timestamp(boost.ends_at),
        )
    return config


def level_curve_to_proto(curve: LevelCurve) -> xp_pb2.LevelCurve:
    return xp_pb2.LevelCurve(
        shape=curve.shape or "", coefficients=curve.coefficients, first_level=curve.first_level
    )


def config_view(community_id: str, config: xp_pb2.XpConfig) -> XpConfigView:
    def rng(rate: xp_pb2.XpRange) -> XpRange:
        return XpRange(min=rate.min, max=rate.max)

    custom = config.curve == "custom"
    return XpConfigView(
        community_id=community_id,
        message=rng(config.message),
        post=rng(config.post),
        reaction=rng(config.reaction),
        custom_kinds={name: rng(rate) for name, rate in config.custom_kinds.items()},
        cooldown_seconds=config.cooldown_seconds,
        min_message_length=config.min_message_length,
        no_xp_channel_ids=list(config.no_xp_channel_ids),
        channel_multipliers=dict(config.channel_multipliers),
        boosts=[
            Boost(
                starts_at=from_timestamp(b.starts_at),
                ends_at=from_timestamp(b.ends_at),
                multiplier=b.multiplier,
                name=b.name,
            )
            for b in config.boosts
        ],
        curve=LevelCurve(
            preset=config.curve,  # type: ignore[arg-type]
            shape=config.level_curve.shape if custom else None,  # type: ignore[arg-type]
            coefficients=list(config.level_curve.coefficients) if custom else [],
            first_level=config.level_curve.first_level,  # type: ignore[arg-type]
        ),
        max_level=config.max_level,
        timezone=config.timezone,
    )


def audited_config(view: XpConfigView) -> dict[str, Any]:
    """The rules as the audit log keeps them (without the community id)."""
    data: dict[str, Any] = msgspec.to_builtins(view)
    data.pop("community_id", None)
    return data


def activity(community_id: str, body: ActivityIn) -> xp_pb2.Activity:
    message = xp_pb2.Activity(
        community_id=community_id,
        user_id=body.user_id,
        kind=ACTIVITY_KINDS.value(body.kind),
        custom_kind=body.custom_kind or "",
        source=xp_pb2.SOURCE_API,
        idempotency_key=body.idempotency_key,
        channel_id=body.channel_id or "",
        content_length=body.content_length,
        author_is_bot=body.author_is_bot,
    )
    if body.occurred_at is not None:
        message.occurred_at.CopyFrom(to_timestamp(body.occurred_at))
    return message


def activity_recorded(reply: xp_pb2.RecordActivityResponse) -> ActivityRecorded:
    return ActivityRecorded(
        status=reply_name(ACTIVITY_OUTCOMES, reply.outcome),  # type: ignore[arg-type]
        skip_reason=SKIP_REASONS.name_or_none(reply.skip_reason),
        xp_awarded=reply.xp_awarded,
        total_xp=reply.total_xp,
        level=reply.level,
        leveled_up=reply.leveled_up,
    )


def activity_batch(community_id: str, body: ActivityBatchIn) -> xp_pb2.RecordActivitiesRequest:
    return xp_pb2.RecordActivitiesRequest(
        activities=[activity(community_id, item) for item in body.activities]
    )


def activity_batch_recorded(reply: xp_pb2.RecordActivitiesResponse) -> ActivityBatchRecorded:
    return ActivityBatchRecorded(results=[activity_recorded(r) for r in reply.results])


def analytics_request(
    community_id: str, since: datetime | None, until: datetime | None
) -> xp_pb2.GetAnalyticsRequest:
    request = xp_pb2.GetAnalyticsRequest(community_id=community_id)
    if since is not None:
        request.since.CopyFrom(timestamp_param(since, "since"))
    if until is not None:
        request.until.CopyFrom(timestamp_param(until, "until"))
    return request


def analytics(community_id: str, reply: xp_pb2.GetAnalyticsResponse) -> Analytics:
    return Analytics(
        community_id=community_id,
        days=[
            DailyActivity(
                day=date.fromisoformat(day.day),
                activities=day.activities,
                xp=day.xp,
                active_members=day.active_members,
                activities_by_kind=dict(day.activities_by_kind),
                new_members=day.new_members,
                level_ups=day.level_ups,
            )
            for day in reply.days
        ],
        top_movers=[Mover(user_id=m.user_id, xp=m.xp) for m in reply.top_movers],
    )
