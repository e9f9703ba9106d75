"""protobuf <-> the rewards context's bodies: reward rules, rewards and their attempts, badges
and the level-up settings."""

from __future__ import annotations

from typing import Any

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards.schemas import (
    AnnouncementPage,
    AnnouncementSettingsBody,
    AnnouncementSettingsView,
    AnnouncementView,
    BadgeBody,
    BadgeView,
    CardBadge,
    CriteriaView,
    DiscountView,
    MemberBadgeView,
    RewardAttemptView,
    RewardPage,
    RewardRuleBody,
    RewardRuleView,
    RewardSettingsView,
    RewardView,
)
from wee5_gateway.core.problems import reply_name
from wee5_kit.proto import EnumCodec, from_timestamp, timestamp_field

REWARD_KINDS = EnumCodec(rewards_pb2.RewardKind)
REWARD_STATUSES = EnumCodec(rewards_pb2.RewardStatus)
DISCOUNT_TYPES = EnumCodec(rewards_pb2.DiscountType)
CRITERIA_KINDS = EnumCodec(rewards_pb2.BadgeCriteriaKind)
BADGE_PERIODS = EnumCodec(rewards_pb2.BadgePeriod)
ANNOUNCEMENT_TARGETS = EnumCodec(rewards_pb2.AnnouncementTarget)
ANNOUNCEMENT_KINDS = EnumCodec(rewards_pb2.AnnouncementKind)


def _discount_view(discount: rewards_pb2.Discount, *, granted: bool) -> DiscountView:
    flat = discount.type == rewards_pb2.DISCOUNT_TYPE_FLAT
    return DiscountView(
        type="flat" if flat else "percent",
        percent_off=None if flat else discount.percent_off,
        amount_off_minor=discount.amount_off_minor if flat else None,
        currency=discount.currency or None,
        duration_months=discount.duration_months,
        expires_in_days=discount.expires_in_days or None,
        code=(discount.code or None) if granted else None,
        expires_at=timestamp_field(discount, "expires_at"),
    )


def rule_view(rule: rewards_pb2.RewardRule) -> RewardRuleView:
    spec = rule.reward
    return RewardRuleView(
        id=rule.id or None,
        level=rule.level,
        kind=reply_name(REWARD_KINDS, spec.kind),  # type: ignore[arg-type]
        free_days=spec.free_days or None,
        discount=_discount_view(spec.discount, granted=False)
        if spec.HasField("discount")
        else None,
        badge_id=spec.badge_id or None,
        role_id=spec.role_id or None,
        enabled=rule.enabled,
    )


def reward_view(reward: rewards_pb2.Reward) -> RewardView:
    return RewardView(
        id=reward.id,
        user_id=reward.user_id,
        level=reward.level,
        kind=reply_name(REWARD_KINDS, reward.kind),  # type: ignore[arg-type]
        status=reply_name(REWARD_STATUSES, reward.status),  # type: ignore[arg-type]
        free_days=reward.free_days or None,
        discount=_discount_view(reward.discount, granted=True)
        if reward.HasField("discount")
        else None,
        badge_id=reward.badge_id or None,
        role_id=reward.role_id or None,
        rule_id=reward.rule_id or None,
        attempts=reward.attempts,
        last_error=reward.last_error or None,
        membership_id=reward.membership_id or None,
        created_at=from_timestamp(reward.created_at),
        granted_at=timestamp_field(reward, "granted_at"),
        next_attempt_at=timestamp_field(reward, "next_attempt_at"),
    )


def reward_page(reply: rewards_pb2.ListRewardsResponse) -> RewardPage:
    return RewardPage(
        rewards=[reward_view(reward) for reward in reply.rewards],
        next_cursor=reply.next_page_token or None,
    )


def attempt_view(
    attempt: rewards_pb2.RewardAttempt | rewards_pb2.AnnouncementAttempt,
) -> RewardAttemptView:
    return RewardAttemptView(
        number=attempt.number,
        outcome=attempt.outcome or None,
        http_status=attempt.http_status or None,
        error=attempt.error or None,
        started_at=from_timestamp(attempt.started_at),
        finished_at=timestamp_field(attempt, "finished_at"),
    )


def badge_view(badge: rewards_pb2.Badge) -> BadgeView:
    return BadgeView(
        id=badge.id,
        name=badge.name,
        description=badge.description,
        image_url=badge.image_url,
        criteria=CriteriaView(
            kind=reply_name(CRITERIA_KINDS, badge.criteria.kind),  # type: ignore[arg-type]
            threshold=badge.criteria.threshold,
            activity_kind=badge.criteria.activity_kind,
            # Badges defined before periods existed count over all time.
            period=BADGE_PERIODS.name_or_none(badge.criteria.period) or "all_time",  # type: ignore[arg-type]
        ),
        role_id=badge.role_id or None,
        created_at=from_timestamp(badge.created_at),
        updated_at=from_timestamp(badge.updated_at),
    )


def member_badge_view(held: rewards_pb2.MemberBadge) -> MemberBadgeView:
    return MemberBadgeView(
        user_id=held.user_id,
        badge=badge_view(held.badge),
        awarded_at=from_timestamp(held.awarded_at),
        awarded_by=held.awarded_by or None,
    )


def card_badge(held: rewards_pb2.MemberBadge) -> CardBadge:
    return CardBadge(
        id=held.badge.id,
        name=held.badge.name,
        image_url=held.badge.image_url,
        awarded_at=from_timestamp(held.awarded_at),
    )


def settings_view(settings: rewards_pb2.RewardSettings) -> RewardSettingsView:
    return RewardSettingsView(
        community_id=settings.community_id,
        level_up_template=settings.level_up_template,
        discord_guild_id=settings.discord_guild_id or None,
        discord_intro_channel_id=settings.discord_intro_channel_id or None,
        discord_welcome_channel_id=settings.discord_welcome_channel_id or None,
        discord_welcome_template=settings.discord_welcome_template,
        discord_welcome_dm_template=settings.discord_welcome_dm_template,
        variables=list(settings.variables),
        welcome_variables=list(settings.welcome_variables),
        discord_subscription_role_id=settings.discord_subscription_role_id or None,
    )


def reward_spec(body: RewardRuleBody) -> rewards_pb2.RewardSpec:
    spec = rewards_pb2.RewardSpec(
        kind=REWARD_KINDS.value(body.kind),
        free_days=body.free_days or 0,
        badge_id=body.badge_id or "",
        role_id=body.role_id or "",
    )
    if body.discount is not None:
        discount = body.discount
        spec.discount.CopyFrom(
            rewards_pb2.Discount(
                type=DISCOUNT_TYPES.value(discount.type),
                percent_off=discount.percent_off or 0,
                amount_off_minor=discount.amount_off_minor or 0,
                currency=discount.currency or "",
                duration_months=discount.duration_months,
                expires_in_days=discount.expires_in_days,
            )
        )
    return spec


def badge_criteria(body: BadgeBody) -> rewards_pb2.BadgeCriteria:
    return rewards_pb2.BadgeCriteria(
        kind=CRITERIA_KINDS.value(body.criteria.kind),
        threshold=body.criteria.threshold,
        activity_kind=body.criteria.activity_kind,
        period=BADGE_PERIODS.value(body.criteria.period),
    )


def audited_badge(badge: BadgeView) -> dict[str, Any]:
    """A badge as the audit log keeps it."""
    return {
        "name": badge.name,
        "criteria": badge.criteria.kind,
        "threshold": badge.criteria.threshold,
        "role_id": badge.role_id,
    }


def announcements_view(settings: rewards_pb2.AnnouncementSettings) -> AnnouncementSettingsView:
    return AnnouncementSettingsView(
        community_id=settings.community_id,
        enabled=settings.enabled,
        target=reply_name(ANNOUNCEMENT_TARGETS, settings.target),  # type: ignore[arg-type]
        channel_id=settings.channel_id or None,
        level_ups=settings.level_ups,
        rewards=settings.rewards,
        badges=settings.badges,
        every_levels=settings.every_levels,
        every_level_from=settings.every_level_from,
        level_up_template=settings.level_up_template,
        reward_template=settings.reward_template,
        badge_template=settings.badge_template,
        variables=list(settings.variables),
    )


def announcements_request(
    community_id: str, body: AnnouncementSettingsBody
) -> rewards_pb2.UpdateAnnouncementSettingsRequest:
    return rewards_pb2.UpdateAnnouncementSettingsRequest(
        settings=rewards_pb2.AnnouncementSettings(
            community_id=community_id,
            enabled=body.enabled,
            target=ANNOUNCEMENT_TARGETS.value(body.target),
            channel_id=body.channel_id or "",
            level_ups=body.level_ups,
            rewards=body.rewards,
            badges=body.badges,
            every_levels=body.every_levels,
            every_level_from=body.every_level_from,
            level_up_template=body.level_up_template,
            reward_template=body.reward_template,
            badge_template=body.badge_template,
        )
    )


def announcement_view(row: rewards_pb2.Announcement) -> AnnouncementView:
    return AnnouncementView(
        id=row.id,
        user_id=row.user_id,
        kind=reply_name(ANNOUNCEMENT_KINDS, row.kind),  # type: ignore[arg-type]
        event_key=row.event_key,
        target=reply_name(ANNOUNCEMENT_TARGETS, row.target),  # type: ignore[arg-type]
        channel_id=row.channel_id or None,
        text=row.text or None,
        status=row.status,  # type: ignore[arg-type]
        last_error=row.last_error or None,
        created_at=from_timestamp(row.created_at),
        sent_at=timestamp_field(row, "sent_at"),
        attempts=[attempt_view(attempt) for attempt in row.attempts],
    )


def announcement_page(reply: rewards_pb2.ListAnnouncementsResponse) -> AnnouncementPage:
    return AnnouncementPage(
        announcements=[announcement_view(row) for row in reply.announcements],
        next_cursor=reply.next_page_token or None,
    )
