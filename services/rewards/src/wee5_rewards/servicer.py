"""RewardsService over gRPC: protobuf in, the rules in service.py, protobuf out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from wee5.rewards.v1 import rewards_pb2, rewards_pb2_grpc
from wee5_kit.logging import bound_contextvars
from wee5_rewards.errors import CommunityRequired, InvalidPageToken, InvalidRequest
from wee5_rewards.models import Badge, CommunitySettings, MemberBadge, Reward, RewardAttempt
from wee5_rewards.service import (
    DEFAULT_TEMPLATE,
    BadgeDraft,
    RewardRule,
    RewardsService,
)

_KINDS = {
    "free_days": rewards_pb2.REWARD_KIND_FREE_DAYS,
    "discount_code": rewards_pb2.REWARD_KIND_DISCOUNT_CODE,
    "badge": rewards_pb2.REWARD_KIND_BADGE,
    "role": rewards_pb2.REWARD_KIND_ROLE,
}
_KIND_NAMES = {value: name for name, value in _KINDS.items()}
_STATUSES = {
    "pending": rewards_pb2.REWARD_STATUS_PENDING,
    "applying": rewards_pb2.REWARD_STATUS_APPLYING,
    "granted": rewards_pb2.REWARD_STATUS_GRANTED,
    "failed": rewards_pb2.REWARD_STATUS_FAILED,
    "dead": rewards_pb2.REWARD_STATUS_DEAD,
    "waiting": rewards_pb2.REWARD_STATUS_WAITING,
    "waiting_membership": rewards_pb2.REWARD_STATUS_WAITING_MEMBERSHIP,
}
_STATUS_NAMES = {value: name for name, value in _STATUSES.items()}
_DISCOUNT_TYPES = {
    rewards_pb2.DISCOUNT_TYPE_PERCENT: "percent",
    rewards_pb2.DISCOUNT_TYPE_FLAT: "flat",
}
_CRITERIA = {
    rewards_pb2.BADGE_CRITERIA_KIND_LEVEL: "level",
    rewards_pb2.BADGE_CRITERIA_KIND_XP: "xp",
    rewards_pb2.BADGE_CRITERIA_KIND_ACTIVITY_COUNT: "activity_count",
    rewards_pb2.BADGE_CRITERIA_KIND_STREAK: "streak",
    rewards_pb2.BADGE_CRITERIA_KIND_RANK: "rank",
    rewards_pb2.BADGE_CRITERIA_KIND_MANUAL: "manual",
}
_CRITERIA_ENUMS = {name: value for value, name in _CRITERIA.items()}
_PERIODS = {
    rewards_pb2.BADGE_PERIOD_UNSPECIFIED: "all_time",
    rewards_pb2.BADGE_PERIOD_ALL_TIME: "all_time",
    rewards_pb2.BADGE_PERIOD_DAILY: "daily",
    rewards_pb2.BADGE_PERIOD_WEEKLY: "weekly",
    rewards_pb2.BADGE_PERIOD_MONTHLY: "monthly",
}
_PERIOD_ENUMS = {
    "all_time": rewards_pb2.BADGE_PERIOD_ALL_TIME,
    "daily": rewards_pb2.BADGE_PERIOD_DAILY,
    "weekly": rewards_pb2.BADGE_PERIOD_WEEKLY,
    "monthly": rewards_pb2.BADGE_PERIOD_MONTHLY,
}
DEFAULT_PAGE = 50
MAX_PAGE = 200
Context = grpc.aio.ServicerContext[Any, Any]


class RewardsServicer(rewards_pb2_grpc.RewardsServiceServicer):
    def __init__(
        self,
        service: RewardsService,
        sessionmaker: async_sessionmaker[AsyncSession],
        wake_delivery: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.wake_delivery = wake_delivery or (lambda: None)

    # Rules

    async def ListRewardRules(
        self, request: rewards_pb2.ListRewardRulesRequest, context: Context
    ) -> rewards_pb2.ListRewardRulesResponse:
        _community(request.community_id)
        async with self.sessionmaker() as session:
            rules = await self.service.rules_of(session, request.community_id)
        return rewards_pb2.ListRewardRulesResponse(
            rules=[_rule_to_proto(request.community_id, rule) for rule in rules]
        )

    async def UpsertRewardRule(
        self, request: rewards_pb2.UpsertRewardRuleRequest, context: Context
    ) -> rewards_pb2.UpsertRewardRuleResponse:
        _community(request.community_id)
        rule = _rule_from_proto(request.level, request.reward, request.enabled)
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker.begin() as session:
                stored, created = await self.service.upsert_rule(
                    session, request.community_id, rule
                )
        return rewards_pb2.UpsertRewardRuleResponse(
            rule=_rule_to_proto(request.community_id, stored), created=created
        )

    async def DeleteRewardRule(
        self, request: rewards_pb2.DeleteRewardRuleRequest, context: Context
    ) -> rewards_pb2.DeleteRewardRuleResponse:
        _community(request.community_id)
        rule_id = _id(request.rule_id, "rule_id") if request.rule_id else None
        async with self.sessionmaker.begin() as session:
            await self.service.delete_rule(
                session, request.community_id, rule_id=rule_id, level=request.level or None
            )
        return rewards_pb2.DeleteRewardRuleResponse()

    async def BackfillRewards(
        self, request: rewards_pb2.BackfillRewardsRequest, context: Context
    ) -> rewards_pb2.BackfillRewardsResponse:
        _community(request.community_id)
        rule_id = _id(request.rule_id, "rule_id") if request.rule_id else None
        with bound_contextvars(community_id=request.community_id):
            # xp's leaderboard first, outside any transaction; then one transaction of inserts.
            members = await self.service.member_levels(request.community_id)
            async with self.sessionmaker.begin() as session:
                result = await self.service.backfill(
                    session,
                    request.community_id,
                    members,
                    rule_id=rule_id,
                    dry_run=request.dry_run,
                )
        if result.created and not request.dry_run:
            self.wake_delivery()
        return rewards_pb2.BackfillRewardsResponse(
            created_count=result.created, skipped_count=result.skipped
        )

    # Rewards

    async def ListRewards(
        self, request: rewards_pb2.ListRewardsRequest, context: Context
    ) -> rewards_pb2.ListRewardsResponse:
        _community(request.community_id)
        status: str | None = None
        if request.status != rewards_pb2.REWARD_STATUS_UNSPECIFIED:
            status = _STATUS_NAMES.get(request.status)
            if status is None:
                raise InvalidRequest("status is not a known reward status")
        page_size = _page_size(request.page_size)
        before_id = _decode_page_token(request.page_token)
        with bound_contextvars(community_id=request.community_id):
            async with self.sessionmaker() as session:
                rows = await self.service.list_rewards(
                    session,
                    request.community_id,
                    user_id=request.user_id or None,
                    status=status,
                    before_id=before_id,
                    limit=page_size + 1,
                )
        page = rows[:page_size]
        return rewards_pb2.ListRewardsResponse(
            rewards=[_reward_to_proto(row) for row in page],
            next_page_token=_encode_page_token(page[-1].id) if len(rows) > page_size else "",
        )

    async def RetryReward(
        self, request: rewards_pb2.RetryRewardRequest, context: Context
    ) -> rewards_pb2.RetryRewardResponse:
        _community(request.community_id)
        reward_id = _id(request.reward_id, "reward_id")
        async with self.sessionmaker.begin() as session:
            reward = await self.service.retry(session, request.community_id, reward_id)
        self.wake_delivery()
        return rewards_pb2.RetryRewardResponse(reward=_reward_to_proto(reward))

    async def ListRewardAttempts(
        self, request: rewards_pb2.ListRewardAttemptsRequest, context: Context
    ) -> rewards_pb2.ListRewardAttemptsResponse:
        _community(request.community_id)
        reward_id = _id(request.reward_id, "reward_id")
        async with self.sessionmaker() as session:
            attempts = await self.service.attempts(session, request.community_id, reward_id)
        return rewards_pb2.ListRewardAttemptsResponse(
            attempts=[_attempt_to_proto(attempt) for attempt in attempts]
        )

    # Badges

    async def ListBadges(
        self, request: rewards_pb2.ListBadgesRequest, context: Context
    ) -> rewards_pb2.ListBadgesResponse:
        _community(request.community_id)
        page_size = _page_size(request.page_size)
        after_id = _decode_page_token(request.page_token)
        async with self.sessionmaker() as session:
            rows = await self.service.list_badges(
                session, request.community_id, after_id=after_id, limit=page_size + 1
            )
        page = rows[:page_size]
        return rewards_pb2.ListBadgesResponse(
            badges=[_badge_to_proto(badge) for badge in page],
            next_page_token=_encode_page_token(page[-1].id) if len(rows) > page_size else "",
        )

    async def CreateBadge(
        self, request: rewards_pb2.CreateBadgeRequest, context: Context
    ) -> rewards_pb2.CreateBadgeResponse:
        _community(request.community_id)
        draft = _badge_draft(request)
        async with self.sessionmaker.begin() as session:
            badge = await self.service.create_badge(session, request.community_id, draft)
        return rewards_pb2.CreateBadgeResponse(badge=_badge_to_proto(badge))

    async def UpdateBadge(
        self, request: rewards_pb2.UpdateBadgeRequest, context: Context
    ) -> rewards_pb2.UpdateBadgeResponse:
        _community(request.community_id)
        badge_id = _id(request.badge_id, "badge_id")
        draft = _badge_draft(request)
        async with self.sessionmaker.begin() as session:
            badge = await self.service.update_badge(session, request.community_id, badge_id, draft)
        return rewards_pb2.UpdateBadgeResponse(badge=_badge_to_proto(badge))

    async def DeleteBadge(
        self, request: rewards_pb2.DeleteBadgeRequest, context: Context
    ) -> rewards_pb2.DeleteBadgeResponse:
        _community(request.community_id)
        badge_id = _id(request.badge_id, "badge_id")
        async with self.sessionmaker.begin() as session:
            await self.service.delete_badge(session, request.community_id, badge_id)
        return rewards_pb2.DeleteBadgeResponse()

    async def AwardBadge(
        self, request: rewards_pb2.AwardBadgeRequest, context: Context
    ) -> rewards_pb2.AwardBadgeResponse:
        _community(request.community_id)
        badge_id = _id(request.badge_id, "badge_id")
        async with self.sessionmaker.begin() as session:
            held, badge, new = await self.service.award_badge(
                session,
                request.community_id,
                badge_id,
                request.user_id,
                request.awarded_by or None,
            )
        return rewards_pb2.AwardBadgeResponse(
            member_badge=_member_badge_to_proto(held, badge), newly_awarded=new
        )

    async def RevokeBadge(
        self, request: rewards_pb2.RevokeBadgeRequest, context: Context
    ) -> rewards_pb2.RevokeBadgeResponse:
        _community(request.community_id)
        badge_id = _id(request.badge_id, "badge_id")
        if not request.user_id:
            raise InvalidRequest("user_id is required")
        async with self.sessionmaker.begin() as session:
            revoked = await self.service.revoke_badge(
                session, request.community_id, badge_id, request.user_id
            )
        return rewards_pb2.RevokeBadgeResponse(revoked=revoked)

    async def ListMemberBadges(
        self, request: rewards_pb2.ListMemberBadgesRequest, context: Context
    ) -> rewards_pb2.ListMemberBadgesResponse:
        _community(request.community_id)
        page_size = _page_size(request.page_size)
        after = _decode_badge_token(request.page_token)
        async with self.sessionmaker() as session:
            rows = await self.service.member_badges(
                session,
                request.community_id,
                user_id=request.user_id or None,
                after=after,
                limit=page_size + 1,
            )
        page = rows[:page_size]
        token = ""
        if len(rows) > page_size:
            last = page[-1][0]
            token = _encode_badge_token(last.awarded_at, last.badge_id, last.user_id)
        return rewards_pb2.ListMemberBadgesResponse(
            member_badges=[_member_badge_to_proto(held, badge) for held, badge in page],
            next_page_token=token,
        )

    # Settings

    async def GetRewardSettings(
        self, request: rewards_pb2.GetRewardSettingsRequest, context: Context
    ) -> rewards_pb2.GetRewardSettingsResponse:
        _community(request.community_id)
        async with self.sessionmaker() as session:
            settings = await self.service.settings(session, request.community_id)
        return rewards_pb2.GetRewardSettingsResponse(settings=_settings_to_proto(settings))

    async def UpdateRewardSettings(
        self, request: rewards_pb2.UpdateRewardSettingsRequest, context: Context
    ) -> rewards_pb2.UpdateRewardSettingsResponse:
        _community(request.community_id)
        async with self.sessionmaker.begin() as session:
            settings = await self.service.update_settings(
                session,
                request.community_id,
                template=request.level_up_template,
                guild_id=request.discord_guild_id,
            )
        return rewards_pb2.UpdateRewardSettingsResponse(settings=_settings_to_proto(settings))


def _community(community_id: str) -> None:
    if not community_id:
        raise CommunityRequired()


def _id(value: str, name: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise InvalidRequest(f"{name} is not an id this service issued")
    return int(value)


def _page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidRequest("page_size must not be negative")
    # Larger pages are served at the maximum rather than refused (AIP-158).
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


def _rule_from_proto(level: int, spec: rewards_pb2.RewardSpec, enabled: bool) -> RewardRule:
    kind = _KIND_NAMES.get(spec.kind)
    if kind is None:
        raise InvalidRequest("reward.kind must be FREE_DAYS, DISCOUNT_CODE, BADGE or ROLE")
    discount = spec.discount
    badge_id = _id(spec.badge_id, "reward.badge_id") if spec.badge_id else None
    return RewardRule(
        level=level,
        kind=kind,  # type: ignore[arg-type]
        free_days=spec.free_days or None,
        discount_type=_DISCOUNT_TYPES.get(discount.type),  # type: ignore[arg-type]
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
        kind=_KINDS[row.kind],
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


def _rule_to_proto(community_id: str, rule: RewardRule) -> rewards_pb2.RewardRule:
    # The default rules are not stored, so they have no id (nor timestamps).
    message = rewards_pb2.RewardRule(
        id=str(rule.id) if rule.id is not None else "",
        community_id=community_id,
        level=rule.level,
        reward=_spec_of(rule),
        enabled=rule.enabled,
    )
    if rule.stored is not None:
        message.created_at.FromDatetime(rule.stored.created_at)
        message.updated_at.FromDatetime(rule.stored.updated_at)
    return message


def _reward_to_proto(row: Reward) -> rewards_pb2.Reward:
    spec = _spec_of(row)
    reward = rewards_pb2.Reward(
        id=str(row.id),
        community_id=row.community_id,
        user_id=row.user_id,
        level=row.level,
        kind=spec.kind,
        status=_STATUSES[row.status],
        free_days=spec.free_days,
        attempts=row.attempts,
        last_error=row.last_error or "",
        badge_id=spec.badge_id,
        role_id=spec.role_id,
        rule_id=str(row.rule_id) if row.rule_id else "",
        membership_id=row.membership_id or "",
    )
    if spec.HasField("discount"):
        reward.discount.CopyFrom(spec.discount)
        reward.discount.code = row.code or ""
        if row.expires_at is not None:
            reward.discount.expires_at.FromDatetime(row.expires_at)
    reward.created_at.FromDatetime(row.created_at)
    if row.granted_at is not None:
        reward.granted_at.FromDatetime(row.granted_at)
    if row.next_attempt_at is not None and row.status not in ("granted", "dead", "waiting"):
        reward.next_attempt_at.FromDatetime(row.next_attempt_at)
    return reward


def _attempt_to_proto(row: RewardAttempt) -> rewards_pb2.RewardAttempt:
    attempt = rewards_pb2.RewardAttempt(
        number=row.number,
        outcome=row.outcome or "",
        http_status=row.http_status or 0,
        error=row.error or "",
    )
    attempt.started_at.FromDatetime(row.started_at)
    if row.finished_at is not None:
        attempt.finished_at.FromDatetime(row.finished_at)
    if row.before_period_end is not None:
        attempt.before_period_end.FromDatetime(row.before_period_end)
    return attempt


def _badge_draft(
    request: rewards_pb2.CreateBadgeRequest | rewards_pb2.UpdateBadgeRequest,
) -> BadgeDraft:
    criteria = _CRITERIA.get(request.criteria.kind)
    if criteria is None:
        raise InvalidRequest("criteria.kind is required")
    period = _PERIODS.get(request.criteria.period)
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


def _badge_to_proto(badge: Badge) -> rewards_pb2.Badge:
    message = rewards_pb2.Badge(
        id=str(badge.id),
        community_id=badge.community_id,
        name=badge.name,
        description=badge.description,
        image_url=badge.image_url,
        criteria=rewards_pb2.BadgeCriteria(
            kind=_CRITERIA_ENUMS[badge.criteria],
            threshold=badge.threshold,
            activity_kind=badge.activity_kind or "",
            period=_PERIOD_ENUMS[badge.period],
        ),
        role_id=badge.role_id or "",
    )
    message.created_at.FromDatetime(badge.created_at)
    message.updated_at.FromDatetime(badge.updated_at)
    return message


def _member_badge_to_proto(held: MemberBadge, badge: Badge) -> rewards_pb2.MemberBadge:
    message = rewards_pb2.MemberBadge(
        community_id=held.community_id,
        user_id=held.user_id,
        badge=_badge_to_proto(badge),
        awarded_by=held.awarded_by or "",
    )
    message.awarded_at.FromDatetime(held.awarded_at)
    return message


def _settings_to_proto(settings: CommunitySettings) -> rewards_pb2.RewardSettings:
    message = rewards_pb2.RewardSettings(
        community_id=settings.community_id,
        level_up_template=settings.level_up_template or DEFAULT_TEMPLATE,
        discord_guild_id=settings.discord_guild_id or "",
    )
    if settings.updated_at is not None:
        message.updated_at.FromDatetime(settings.updated_at)
    return message


def _encode_page_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{last_id}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPageToken() from None


def _decode_page_token(token: str) -> int | None:
    """The id the next page continues from, or None for the first page."""
    if not token:
        return None
    raw = _decode_token(token)
    try:
        last_id = int(raw[1:]) if raw.startswith("r") else 0
    except ValueError:
        raise InvalidPageToken() from None
    if last_id <= 0:
        raise InvalidPageToken()
    return last_id


def _encode_badge_token(awarded_at: datetime, badge_id: int, user_id: str) -> str:
    raw = f"b{awarded_at.isoformat()}|{badge_id}|{user_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_badge_token(token: str) -> tuple[datetime, int, str] | None:
    if not token:
        return None
    raw = _decode_token(token)
    try:
        stamp, badge_id, user_id = raw[1:].split("|", 2)
        if not raw.startswith("b"):
            raise ValueError(raw)
        return datetime.fromisoformat(stamp), int(badge_id), user_id
    except ValueError:
        raise InvalidPageToken() from None
