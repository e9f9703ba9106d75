"""Protobuf <-> the rewards domain: what the servicer reads from requests and writes into
responses. Enum names come from the enums' descriptors (`wee5_kit.proto.EnumCodec`) and are
the names the models store (`REWARD_KIND_FREE_DAYS` is `"free_days"`)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from wee5.rewards.v1 import rewards_pb2
from wee5_kit.pagination import InvalidPageToken, decode_page_token, encode_page_token
from wee5_kit.proto import EnumCodec, optional_timestamp, to_timestamp
from wee5_rewards.announcements import (
    DEFAULT_WELCOME,
    VARIABLES,
    WELCOME_VARIABLES,
    Announcements,
    Cadence,
    Kind,
    Target,
)
from wee5_rewards.errors import InvalidRequest
from wee5_rewards.models import (
    Announcement,
    AnnouncementAttempt,
    Badge,
    CommunitySettings,
    MemberBadge,
    Reward,
    RewardAttempt,
    RoleAssignment,
)
from wee5_rewards.service import (
    DEFAULT_TEMPLATE,
    BadgeDraft,
    DiscountType,
    RewardKind,
    RewardRule,
)

REWARD_KINDS = EnumCodec(rewards_pb2.RewardKind)
REWARD_STATUSES = EnumCodec(rewards_pb2.RewardStatus)
DISCOUNT_TYPES = EnumCodec(rewards_pb2.DiscountType)
BADGE_CRITERIA = EnumCodec(rewards_pb2.BadgeCriteriaKind)
BADGE_PERIODS = EnumCodec(rewards_pb2.BadgePeriod)
ANNOUNCEMENT_TARGETS = EnumCodec(rewards_pb2.AnnouncementTarget)
ANNOUNCEMENT_KINDS = EnumCodec(rewards_pb2.AnnouncementKind)
DEFAULT_PAGE = 50
MAX_PAGE = 200


def parse_id(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise InvalidRequest(f"{name} is not an id this service issued")
    return int(value)


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidRequest("page_size must not be negative")
    # Larger pages are served at the maximum rather than refused (AIP-158).
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


def status_filter(value: int) -> str | None:
    """The reward status a list is filtered by, or None for every status."""
    if value == rewards_pb2.REWARD_STATUS_UNSPECIFIED:
        return None
    status = REWARD_STATUSES.name_or_none(value)
    if status is None:
        raise InvalidRequest("status is not a known reward status")
    return status


# Page tokens: rewards and badges page by id, member badges by (awarded_at, badge, member).


def id_token(last_id: int) -> str:
    return encode_page_token(last_id)


def id_cursor(token: str) -> int | None:
    """The id the next page continues from, or None for the first page."""
    if not token:
        return None
    (last_id,) = decode_page_token(token, int, name="page_token")
    if last_id <= 0:
        raise InvalidPageToken("page_token")
    return int(last_id)


def member_badge_token(held: MemberBadge) -> str:
    return encode_page_token(held.awarded_at, held.badge_id, held.user_id)


def member_badge_cursor(token: str) -> tuple[datetime, int, str] | None:
    if not token:
        return None
    awarded_at, badge_id, user_id = decode_page_token(token, datetime, int, str, name="page_token")
    return awarded_at, badge_id, user_id


# Reward rules and rewards


def rule_from_proto(level: int, spec: rewards_pb2.RewardSpec, enabled: bool) -> RewardRule:
    kind = REWARD_KINDS.name_or_none(spec.kind)
    if kind is None:
        raise InvalidRequest("reward.kind must be FREE_DAYS, DISCOUNT_CODE, BADGE or ROLE")
    discount = spec.discount
    badge_id = parse_id(spec.badge_id, "reward.badge_id") if spec.badge_id else None
    return RewardRule(
        level=level,
        kind=cast(RewardKind, kind),
        free_days=spec.free_days or None,
        discount_type=cast(DiscountType | None, DISCOUNT_TYPES.name_or_none(discount.type)),
        discount_percent=discount.percent_off or None,
        amount_off_minor=discount.amount_off_minor or None,
        currency=discount.currency or None,
        duration_months=discount.duration_months or None,
        expires_in_days=discount.expires_in_days or None,
        badge_id=badge_id,
        role_id=spec.role_id or None,
        enabled=enabled,
    )


def _spec_of(row: RewardRule | Reward) -> rewards_pb2.RewardSpec:
    """What a rule gives, or what a granted reward gave (both carry the same fields)."""
    spec = rewards_pb2.RewardSpec(
        kind=REWARD_KINDS.value(row.kind),
        free_days=row.free_days or 0,
        badge_id=str(row.badge_id) if row.badge_id else "",
        role_id=row.role_id or "",
    )
    if row.kind == "discount_code":
        spec.discount.CopyFrom(_discount_of(row))
    return spec


def _discount_of(row: RewardRule | Reward) -> rewards_pb2.Discount:
    flat = row.discount_type == "flat"
    return rewards_pb2.Discount(
        type=rewards_pb2.DISCOUNT_TYPE_FLAT if flat else rewards_pb2.DISCOUNT_TYPE_PERCENT,
        percent_off=0 if flat else row.discount_percent or 0,
        amount_off_minor=row.amount_off_minor or 0,
        currency=row.currency or "",
        duration_months=row.duration_months or 0,
        expires_in_days=row.expires_in_days or 0,
    )


def rule_to_proto(community_id: str, rule: RewardRule) -> rewards_pb2.RewardRule:
    # The default rules are not stored, so they have no id (nor timestamps).
    stored = rule.stored
    return rewards_pb2.RewardRule(
        id=str(rule.id) if rule.id is not None else "",
        community_id=community_id,
        level=rule.level,
        reward=_spec_of(rule),
        enabled=rule.enabled,
        created_at=optional_timestamp(stored.created_at if stored else None),
        updated_at=optional_timestamp(stored.updated_at if stored else None),
    )


def reward_to_proto(row: Reward) -> rewards_pb2.Reward:
    spec = _spec_of(row)
    # A granted, dead or parked reward is not attempted again, whatever the column says.
    retried = row.status not in ("granted", "dead", "waiting")
    reward = rewards_pb2.Reward(
        id=str(row.id),
        community_id=row.community_id,
        user_id=row.user_id,
        level=row.level,
        kind=spec.kind,
        status=REWARD_STATUSES.value(row.status),
        free_days=spec.free_days,
        attempts=row.attempts,
        last_error=row.last_error or "",
        badge_id=spec.badge_id,
        role_id=spec.role_id,
        rule_id=str(row.rule_id) if row.rule_id else "",
        membership_id=row.membership_id or "",
        created_at=to_timestamp(row.created_at),
        granted_at=optional_timestamp(row.granted_at),
        next_attempt_at=optional_timestamp(row.next_attempt_at if retried else None),
    )
    if spec.HasField("discount"):
        reward.discount.CopyFrom(spec.discount)
        reward.discount.code = row.code or ""
        if row.expires_at is not None:
            reward.discount.expires_at.CopyFrom(to_timestamp(row.expires_at))
    return reward


def attempt_to_proto(row: RewardAttempt) -> rewards_pb2.RewardAttempt:
    return rewards_pb2.RewardAttempt(
        number=row.number,
        outcome=row.outcome or "",
        http_status=row.http_status or 0,
        error=row.error or "",
        started_at=to_timestamp(row.started_at),
        finished_at=optional_timestamp(row.finished_at),
        before_period_end=optional_timestamp(row.before_period_end),
    )


def role_assignment_to_proto(row: RoleAssignment) -> rewards_pb2.RoleAssignment:
    return rewards_pb2.RoleAssignment(
        user_id=row.user_id,
        role_id=row.role_id,
        source=row.source,
        action=row.action,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error or "",
        updated_at=to_timestamp(row.updated_at),
    )


# Badges


def badge_draft(
    request: rewards_pb2.CreateBadgeRequest | rewards_pb2.UpdateBadgeRequest,
) -> BadgeDraft:
    criteria = BADGE_CRITERIA.name_or_none(request.criteria.kind)
    if criteria is None:
        raise InvalidRequest("criteria.kind is required")
    # An unset period means all time.
    period = BADGE_PERIODS.name_or_none(
        request.criteria.period or rewards_pb2.BADGE_PERIOD_ALL_TIME
    )
    if period is None:
        raise InvalidRequest("criteria.period is not a known period")
    return BadgeDraft(
        name=request.name,
        description=request.description,
        image_url=request.image_url,
        criteria=criteria,
        threshold=request.criteria.threshold,
        activity_kind=request.criteria.activity_kind,
        period=period,
        role_id=request.role_id or None,
    )


def badge_to_proto(badge: Badge) -> rewards_pb2.Badge:
    return rewards_pb2.Badge(
        id=str(badge.id),
        community_id=badge.community_id,
        name=badge.name,
        description=badge.description,
        image_url=badge.image_url,
        criteria=rewards_pb2.BadgeCriteria(
            kind=BADGE_CRITERIA.value(badge.criteria),
            threshold=badge.threshold,
            activity_kind=badge.activity_kind or "",
            period=BADGE_PERIODS.value(badge.period),
        ),
        role_id=badge.role_id or "",
        created_at=to_timestamp(badge.created_at),
        updated_at=to_timestamp(badge.updated_at),
    )


def member_badge_to_proto(held: MemberBadge, badge: Badge) -> rewards_pb2.MemberBadge:
    return rewards_pb2.MemberBadge(
        community_id=held.community_id,
        user_id=held.user_id,
        badge=badge_to_proto(badge),
        awarded_by=held.awarded_by or "",
        awarded_at=to_timestamp(held.awarded_at),
    )


def settings_to_proto(settings: CommunitySettings) -> rewards_pb2.RewardSettings:
    return rewards_pb2.RewardSettings(
        community_id=settings.community_id,
        level_up_template=settings.level_up_template or DEFAULT_TEMPLATE,
        discord_guild_id=settings.discord_guild_id or "",
        discord_guild_bound_by=settings.discord_guild_bound_by or "",
        discord_intro_channel_id=settings.discord_intro_channel_id or "",
        discord_welcome_channel_id=settings.discord_welcome_channel_id or "",
        discord_welcome_template=settings.discord_welcome_template or DEFAULT_WELCOME,
        discord_welcome_dm_template=settings.discord_welcome_dm_template or "",
        welcome_variables=list(WELCOME_VARIABLES),
        discord_subscription_role_id=settings.discord_subscription_role_id or "",
        updated_at=optional_timestamp(settings.updated_at),
        variables=list(VARIABLES),
    )


def announcements_to_proto(
    community_id: str, settings: Announcements
) -> rewards_pb2.AnnouncementSettings:
    return rewards_pb2.AnnouncementSettings(
        community_id=community_id,
        enabled=settings.enabled,
        target=ANNOUNCEMENT_TARGETS.value(settings.target.value),
        channel_id=settings.channel_id,
        level_ups=settings.level_ups,
        rewards=settings.rewards,
        badges=settings.badges,
        every_levels=settings.cadence.every,
        every_level_from=settings.cadence.every_from,
        level_up_template=settings.template(Kind.LEVEL_UP),
        reward_template=settings.template(Kind.REWARD),
        badge_template=settings.template(Kind.BADGE),
        variables=list(VARIABLES),
    )


def announcements_from_proto(message: rewards_pb2.AnnouncementSettings) -> Announcements:
    """What an update asks for; an unspecified target is the default one."""
    target = ANNOUNCEMENT_TARGETS.name_or_none(message.target) if message.target else None
    if message.target and target is None:
        raise InvalidRequest("target is not an announcement target")
    return Announcements(
        enabled=message.enabled,
        target=Target(target) if target else Target.ACTIVITY_CHANNEL,
        channel_id=message.channel_id,
        level_ups=message.level_ups,
        rewards=message.rewards,
        badges=message.badges,
        cadence=Cadence(message.every_levels or 1, message.every_level_from),
        templates={
            Kind.LEVEL_UP: message.level_up_template or None,
            Kind.REWARD: message.reward_template or None,
            Kind.BADGE: message.badge_template or None,
        },
    )


def announcement_kind(value: int) -> Kind:
    name = ANNOUNCEMENT_KINDS.name_or_none(value) if value else None
    if name is None or name == "summary":
        raise InvalidRequest("kind must be LEVEL_UP, REWARD or BADGE")
    return Kind(name)


def announcement_target(value: int) -> Target | None:
    """The target a preview asks for; None (unspecified) is the community's own."""
    if not value:
        return None
    name = ANNOUNCEMENT_TARGETS.name_or_none(value)
    if name is None:
        raise InvalidRequest("target is not an announcement target")
    return Target(name)


def announcement_to_proto(
    row: Announcement, attempts: list[AnnouncementAttempt]
) -> rewards_pb2.Announcement:
    return rewards_pb2.Announcement(
        id=row.id,
        community_id=row.community_id,
        user_id=row.user_id,
        kind=ANNOUNCEMENT_KINDS.value(row.kind),
        event_key=row.event_key,
        target=ANNOUNCEMENT_TARGETS.value(row.target),
        channel_id=row.channel_id or "",
        text=row.text or "",
        status=row.status,
        attempt_count=row.attempts,
        last_error=row.last_error or "",
        created_at=to_timestamp(row.created_at),
        sent_at=optional_timestamp(row.sent_at),
        attempts=[
            rewards_pb2.AnnouncementAttempt(
                number=attempt.number,
                outcome=attempt.outcome or "",
                http_status=attempt.http_status or 0,
                error=attempt.error or "",
                started_at=to_timestamp(attempt.started_at),
                finished_at=optional_timestamp(attempt.finished_at),
            )
            for attempt in attempts
        ],
    )


ANNOUNCEMENT_STATUSES = frozenset(
    {"pending", "sending", "sent", "failed", "dead", "waiting", "collapsed"}
)


def announcement_status(value: str) -> str | None:
    if not value:
        return None
    if value not in ANNOUNCEMENT_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(sorted(ANNOUNCEMENT_STATUSES))}")
    return value
