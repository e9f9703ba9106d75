"""Reward rules and badges as the JSON routes and the dashboard pages both change them: one
function per write (the plan gate, the call to rewards, the audit entry)."""

from __future__ import annotations

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards.mappers import (
    audited_badge,
    badge_criteria,
    badge_view,
    member_badge_view,
    reward_spec,
    rule_view,
)
from wee5_gateway.api.rewards.schemas import (
    BadgeAwarded,
    BadgeBody,
    BadgeView,
    RewardRuleBody,
    RewardRuleSaved,
)
from wee5_gateway.core.access import Principal
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.entitlements import Entitlements, Feature


async def upsert_rule(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    community_id: str,
    level: int,
    data: RewardRuleBody,
) -> RewardRuleSaved:
    """Creates or replaces the rule of a level (premium), audited."""
    await entitlements.require_feature(community_id, Feature.REWARD_RULES)
    async with audit.change("reward_rule.changed") as change:
        reply = await downstream.rewards.UpsertRewardRule(
            rewards_pb2.UpsertRewardRuleRequest(
                community_id=community_id,
                level=level,
                reward=reward_spec(data),
                enabled=data.enabled,
            )
        )
        rule = rule_view(reply.rule)
        change.done(
            after={"level": rule.level, "kind": rule.kind, "enabled": rule.enabled},
            target=f"reward_rule:{rule.id}",
        )
    return RewardRuleSaved(rule=rule, created=reply.created)


async def delete_rule(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    community_id: str,
    level: int,
) -> None:
    """Removes the rule of a level (premium), audited; rewards already earned are kept."""
    await entitlements.require_feature(community_id, Feature.REWARD_RULES)
    async with audit.change("reward_rule.deleted", target=f"reward_rule:level:{level}") as change:
        await downstream.rewards.DeleteRewardRule(
            rewards_pb2.DeleteRewardRuleRequest(community_id=community_id, level=level)
        )
        change.done(before={"level": level})


async def create_badge(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    community_id: str,
    data: BadgeBody,
) -> BadgeView:
    """Defines a badge (enterprise), audited."""
    await entitlements.require_feature(community_id, Feature.BADGES)
    async with audit.change("badge.created") as change:
        reply = await downstream.rewards.CreateBadge(
            rewards_pb2.CreateBadgeRequest(
                community_id=community_id,
                name=data.name,
                description=data.description,
                image_url=data.image_url,
                criteria=badge_criteria(data),
                role_id=data.role_id or "",
            )
        )
        badge = badge_view(reply.badge)
        change.done(after=audited_badge(badge), target=f"badge:{badge.id}")
    return badge


async def update_badge(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    community_id: str,
    badge_id: int,
    data: BadgeBody,
) -> BadgeView:
    """Replaces a badge's definition (enterprise), audited; members who hold it keep it."""
    await entitlements.require_feature(community_id, Feature.BADGES)
    async with audit.change("badge.updated") as change:
        reply = await downstream.rewards.UpdateBadge(
            rewards_pb2.UpdateBadgeRequest(
                community_id=community_id,
                badge_id=str(badge_id),
                name=data.name,
                description=data.description,
                image_url=data.image_url,
                criteria=badge_criteria(data),
                role_id=data.role_id or "",
            )
        )
        badge = badge_view(reply.badge)
        change.done(after=audited_badge(badge), target=f"badge:{badge.id}")
    return badge


async def award_badge(
    downstream: Downstream,
    entitlements: Entitlements,
    audit: Auditor,
    principal: Principal,
    community_id: str,
    badge_id: int,
    user_id: str,
) -> BadgeAwarded:
    """Gives a member a badge by hand, or restores a revoked one (enterprise), audited."""
    await entitlements.require_feature(community_id, Feature.BADGES)
    async with audit.change("badge.awarded", target=f"member:{user_id}") as change:
        reply = await downstream.rewards.AwardBadge(
            rewards_pb2.AwardBadgeRequest(
                community_id=community_id,
                badge_id=str(badge_id),
                user_id=user_id,
                awarded_by=str(
                    principal.account_id or principal.api_key_id or principal.whop_user_id or ""
                ),
            )
        )
        if reply.newly_awarded:
            change.done(after={"badge_id": str(badge_id)})
        else:
            change.unchanged()
    return BadgeAwarded(
        member_badge=member_badge_view(reply.member_badge),
        newly_awarded=reply.newly_awarded,
    )
