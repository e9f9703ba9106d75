"""xp's protobuf messages <-> its domain objects, and the checks every request gets at the
edge (enum values, community ids, timestamps, page tokens)."""

from __future__ import annotations

from datetime import date

from wee5.xp.v1 import xp_pb2
from wee5_kit.communities import validate_community_id
from wee5_kit.pagination import InvalidPageToken, decode_page_token, encode_page_token
from wee5_kit.proto import (
    EnumCodec,
    from_timestamp,
    optional_timestamp,
    timestamp_field,
    to_timestamp,
)
from wee5_xp.awards import ActivityInput, ActivityResult
from wee5_xp.companies import CompanyBoard, CompanyCard
from wee5_xp.errors import InvalidActivity, InvalidCursor, InvalidXpConfig
from wee5_xp.levels import PRESETS, SHAPES, CurveSpec, LevelRow, preset
from wee5_xp.memberships import InvalidMembership, MembershipUpdate
from wee5_xp.models import LedgerEntry, Membership
from wee5_xp.profiles import ProfileFields, described
from wee5_xp.queries import Analytics, CompanyAnalytics, LeaderboardRow, RankCard
from wee5_xp.repository.analytics import DailyActivity
from wee5_xp.rules import Boost, XpConfig, XpRange

ACTIVITY_KINDS = EnumCodec(xp_pb2.ActivityKind)
SOURCES = EnumCodec(xp_pb2.Source)
PERIODS = EnumCodec(xp_pb2.Period)
OUTCOMES = EnumCodec(xp_pb2.ActivityOutcome)
SKIP_REASONS = EnumCodec(xp_pb2.SkipReason)


def community_id_of(value: str) -> str:
    """A request's community id, under the one rule every edge applies."""
    return validate_community_id(value)


def period_of(value: xp_pb2.Period.ValueType) -> str:
    """The board a request asks for; unspecified means the all-time board."""
    if value == xp_pb2.PERIOD_UNSPECIFIED:
        return "all"
    period = PERIODS.name_or_none(value)
    if period is None:
        raise InvalidActivity("period must be all, month, week or day")
    return period


def day_of(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidActivity(f"{name} must be a date YYYY-MM-DD") from None


# --- page tokens -----------------------------------------------------------------------------


def leaderboard_cursor(offset: int, start: date | None) -> str:
    """Where the next page of a board starts; it stays on the period its first page was of."""
    return encode_page_token(offset, start.isoformat() if start else None)


def from_leaderboard_cursor(cursor: str) -> tuple[int, date | None]:
    """(offset, first day of the period the cursor's pages are from)."""
    if not cursor:
        return 0, None
    try:
        offset, day = decode_page_token(cursor, int, (str, type(None)))
        start = date.fromisoformat(day) if day else None
    except (InvalidPageToken, ValueError):
        raise InvalidCursor() from None
    if offset < 0:
        raise InvalidCursor()
    return offset, start


def history_token(before_id: int | None) -> str:
    return encode_page_token(before_id) if before_id is not None else ""


def from_history_token(token: str) -> int | None:
    if not token:
        return None
    (before_id,) = decode_page_token(token, int, name="history page token")
    return int(before_id)


# --- activities ------------------------------------------------------------------------------


def activity_from_proto(message: xp_pb2.Activity) -> ActivityInput:
    kind = ACTIVITY_KINDS.name_or_none(message.kind)
    if kind is None:
        raise InvalidActivity("activity.kind is required", "kind")
    source = SOURCES.name_or_none(message.source)
    if source is None:
        raise InvalidActivity("activity.source is required", "source")
    return ActivityInput(
        community_id=community_id_of(message.community_id),
        user_id=message.user_id,
        kind=kind,
        custom_kind=message.custom_kind or None,
        source=source,
        idempotency_key=message.idempotency_key,
        channel_id=message.channel_id or None,
        content_length=message.content_length,
        author_is_bot=message.author_is_bot,
        occurred_at=timestamp_field(message, "occurred_at"),
        profile=profile_from_proto(message.profile) if message.HasField("profile") else None,
    )


def profile_from_proto(message: xp_pb2.Profile) -> ProfileFields | None:
    """What a source said about a member (None when it said nothing usable)."""
    fields = described(message.display_name, message.username, message.avatar_url)
    return None if fields.empty else fields


def profile_to_proto(fields: ProfileFields) -> xp_pb2.Profile:
    return xp_pb2.Profile(
        display_name=fields.display_name or "",
        username=fields.username or "",
        avatar_url=fields.avatar_url or "",
    )


def activity_result_to_proto(result: ActivityResult) -> xp_pb2.RecordActivityResponse:
    return xp_pb2.RecordActivityResponse(
        outcome=OUTCOMES.value(result.outcome),
        skip_reason=SKIP_REASONS.value(result.skip_reason)
        if result.skip_reason and result.skip_reason in SKIP_REASONS
        else xp_pb2.SKIP_REASON_UNSPECIFIED,
        xp_awarded=result.xp_awarded,
        total_xp=result.total_xp,
        level=result.level,
        leveled_up=result.leveled_up,
    )


# --- members, boards, history, analytics -----------------------------------------------------


def rank_card_to_proto(card: RankCard) -> xp_pb2.Member:
    member = card.member
    return xp_pb2.Member(
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
                period=PERIODS.value(p.period),
                period_start=p.start.isoformat(),
                rank=p.rank,
                xp=p.xp,
            )
            for p in card.periods
        ],
        last_activity_at=optional_timestamp(member.last_activity_at),
        profile=profile_to_proto(card.profile),
        hidden_from_leaderboards=member.hidden_from_leaderboards,
        updating=card.updating,
        rank_approximate=card.approximate,
    )


def leaderboard_row_to_proto(row: LeaderboardRow) -> xp_pb2.LeaderboardEntry:
    return xp_pb2.LeaderboardEntry(
        rank=row.rank,
        user_id=row.user_id,
        xp=row.xp,
        level=row.level,
        profile=profile_to_proto(row.profile),
        progress=row.progress,
        rank_approximate=row.approximate,
    )


def ledger_entry_to_proto(entry: LedgerEntry) -> xp_pb2.LedgerEntry:
    return xp_pb2.LedgerEntry(
        id=entry.id,
        delta=entry.delta,
        reason=entry.reason,
        # Sources that are not one of the enum's (admin, benchmarks, …) keep their name only.
        source=SOURCES.value(entry.source)
        if entry.source in SOURCES
        else xp_pb2.SOURCE_UNSPECIFIED,
        balance_after=entry.balance_after,
        source_name=entry.source,
        level_after=entry.level_after or 0,
        actor=entry.actor or "",
        created_at=to_timestamp(entry.created_at),
    )


def daily_activity_to_proto(day: DailyActivity) -> xp_pb2.DailyActivity:
    return xp_pb2.DailyActivity(
        day=day.day.isoformat(),
        activities=day.activities,
        xp=day.xp,
        active_members=day.active_members,
        activities_by_kind=day.by_kind,
        new_members=day.new_members,
        level_ups=day.level_ups,
    )


def analytics_to_proto(analytics: Analytics) -> xp_pb2.GetAnalyticsResponse:
    return xp_pb2.GetAnalyticsResponse(
        days=[daily_activity_to_proto(day) for day in analytics.days],
        top_movers=[xp_pb2.Mover(user_id=u, xp=xp) for u, xp in analytics.top_movers],
    )


def company_analytics_to_proto(analytics: CompanyAnalytics) -> xp_pb2.GetCompanyAnalyticsResponse:
    return xp_pb2.GetCompanyAnalyticsResponse(
        communities=[
            xp_pb2.CommunityAnalytics(
                community_id=community.community_id,
                days=[daily_activity_to_proto(day) for day in community.days],
                active_members=community.active_members,
                xp=sum(day.xp for day in community.days),
            )
            for community in analytics.communities
        ],
        active_members=analytics.active_members,
        members_in_several=analytics.members_in_several,
        top_movers=[
            xp_pb2.CompanyMover(user_id=user_id, xp=xp, communities=spread)
            for user_id, xp, spread in analytics.top_movers
        ],
    )


# --- memberships -----------------------------------------------------------------------------


def membership_update_from_proto(request: xp_pb2.SetMembershipRequest) -> MembershipUpdate:
    given = request.membership
    updated_at = timestamp_field(given, "updated_at")
    if updated_at is None:
        raise InvalidMembership("membership.updated_at is required")
    return MembershipUpdate(
        company_id=given.company_id,
        user_id=given.user_id,
        membership_id=given.membership_id,
        status=given.status,
        active=given.active,
        updated_at=updated_at,
        community_id=community_id_of(request.community_id) if request.community_id else None,
        profile=profile_from_proto(request.profile) if request.HasField("profile") else None,
    )


def membership_to_proto(stored: Membership) -> xp_pb2.Membership:
    return xp_pb2.Membership(
        company_id=stored.company_id,
        user_id=stored.user_id,
        membership_id=stored.membership_id,
        status=stored.status,
        active=stored.active,
        updated_at=to_timestamp(stored.updated_at),
    )


def level_rows_to_proto(rows: list[LevelRow]) -> xp_pb2.PreviewLevelsResponse:
    return xp_pb2.PreviewLevelsResponse(
        rows=[
            xp_pb2.LevelRow(level=r.level, xp_for_level=r.xp_for_level, total_xp=r.total_xp)
            for r in rows
        ]
    )


# --- configs ---------------------------------------------------------------------------------


def config_to_proto(config: XpConfig) -> xp_pb2.XpConfig:
    def rng(rate: XpRange) -> xp_pb2.XpRange:
        return xp_pb2.XpRange(min=rate.min, max=rate.max)

    return xp_pb2.XpConfig(
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
        boosts=[
            xp_pb2.BoostWindow(
                multiplier=boost.multiplier,
                name=boost.name,
                starts_at=to_timestamp(boost.starts_at),
                ends_at=to_timestamp(boost.ends_at),
            )
            for boost in config.boosts
        ],
    )


def config_from_proto(message: xp_pb2.XpConfig) -> XpConfig:
    """The config a request asks for (not validated yet: `XpConfig.validate` names every
    field out of bounds)."""
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
        # The curve is checked first: its errors are named before the boosts'.
        curve=curve_from_proto(message),
        boosts=_boosts_from_proto(message),
        timezone=message.timezone or "UTC",
    )


def curve_from_proto(message: xp_pb2.XpConfig | xp_pb2.PreviewLevelsRequest) -> CurveSpec:
    """The curve a config (or a preview) names: a preset, or `custom` with its shape."""
    max_level = message.max_level or 1000
    name = message.curve or "default"
    if name == "custom":
        spec = message.level_curve
        if spec.shape not in SHAPES:
            raise InvalidXpConfig({"curve.shape": f"must be one of {', '.join(SHAPES)}"})
        return CurveSpec(
            spec.shape, tuple(spec.coefficients), spec.first_level, max_level, preset=None
        )
    if name in PRESETS:
        return preset(name, max_level)
    raise InvalidXpConfig({"curve": f"must be custom or one of {', '.join(PRESETS)}"})


def _boosts_from_proto(message: xp_pb2.XpConfig) -> tuple[Boost, ...]:
    boosts = []
    for i, window in enumerate(message.boosts):
        if not (window.HasField("starts_at") and window.HasField("ends_at")):
            raise InvalidXpConfig({f"boosts[{i}]": "starts_at and ends_at are required"})
        boosts.append(
            Boost(
                from_timestamp(window.starts_at),
                from_timestamp(window.ends_at),
                window.multiplier,
                window.name,
            )
        )
    return tuple(boosts)


def company_board_to_proto(
    board: CompanyBoard, next_cursor: str
) -> xp_pb2.GetCompanyLeaderboardResponse:
    return xp_pb2.GetCompanyLeaderboardResponse(
        entries=[
            xp_pb2.CompanyLeaderboardEntry(
                rank=row.rank,
                user_id=row.user_id,
                xp=row.xp,
                profile=profile_to_proto(row.profile),
            )
            for row in board.rows
        ],
        next_cursor=next_cursor,
        period_start=board.start.isoformat() if board.start else "",
        total=board.total,
        updating=board.updating,
    )


def company_card_to_proto(card: CompanyCard) -> xp_pb2.CompanyMember:
    return xp_pb2.CompanyMember(
        company_id=card.company_id,
        user_id=card.user_id,
        xp=card.xp,
        rank=card.rank,
        periods=[
            xp_pb2.CompanyPeriodStanding(
                period=PERIODS.value(p.period),
                period_start=p.start.isoformat(),
                rank=p.rank,
                xp=p.xp,
            )
            for p in card.periods
        ],
        communities=[
            xp_pb2.CommunityStanding(
                community_id=c.community_id,
                xp=c.xp,
                level=c.level,
                in_company_board=c.in_company_board,
            )
            for c in card.communities
        ],
        profile=profile_to_proto(card.profile),
        updating=card.updating,
    )
