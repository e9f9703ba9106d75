"""Where a member stands with the community's rewards: every enabled level rule, lowest
first, with the member's reward for it (granted, on its way, failed…) or how many levels are
left to climb; plus rewards the member holds whose rule has gone since. And the words that
say so, for the profile page and Discord's /rewards."""

from __future__ import annotations

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards.mappers import reward_view, rule_view
from wee5_gateway.api.rewards.schemas import (
    MemberRewardStanding,
    RewardRuleView,
    RewardStep,
    RewardView,
)
from wee5_gateway.core.clients import Downstream

# A member holds at most one reward per level rule; this many covers any real ladder.
MAX_REWARDS = 200


async def reward_standing(
    downstream: Downstream, community_id: str, user_id: str, level: int
) -> MemberRewardStanding:
    """The member (now at `level`) and the community's rewards."""
    rules = await downstream.rewards.ListRewardRules(
        rewards_pb2.ListRewardRulesRequest(community_id=community_id)
    )
    held = await downstream.rewards.ListRewards(
        rewards_pb2.ListRewardsRequest(
            community_id=community_id, user_id=user_id, page_size=MAX_REWARDS
        )
    )
    rewards = [reward_view(reward) for reward in held.rewards]
    steps: list[RewardStep] = []
    for rule in (rule_view(rule) for rule in rules.rules):
        reward = next((r for r in rewards if _earned_by(r, rule)), None)
        if reward is not None:
            rewards.remove(reward)
            steps.append(_held(reward))
        elif rule.enabled:
            steps.append(
                RewardStep(
                    level=rule.level,
                    kind=rule.kind,
                    state="reached" if level >= rule.level else "ahead",
                    levels_to_go=max(rule.level - level, 0),
                    free_days=rule.free_days,
                    discount=rule.discount,
                    badge_id=rule.badge_id,
                    role_id=rule.role_id,
                )
            )
    steps += [_held(reward) for reward in rewards]  # their rule was changed or removed
    steps.sort(key=lambda step: step.level)
    return MemberRewardStanding(community_id, user_id, level, steps)


def _earned_by(reward: RewardView, rule: RewardRuleView) -> bool:
    if reward.rule_id and rule.id:
        return reward.rule_id == rule.id
    return (reward.level, reward.kind) == (rule.level, rule.kind)


def _held(reward: RewardView) -> RewardStep:
    return RewardStep(
        level=reward.level,
        kind=reward.kind,
        state=reward.status,
        levels_to_go=0,
        free_days=reward.free_days,
        discount=reward.discount,
        badge_id=reward.badge_id,
        role_id=reward.role_id,
        granted_at=reward.granted_at,
    )


def describe_reward(step: RewardStep) -> str:
    """What the reward is, in words."""
    if step.kind == "free_days":
        return f"{step.free_days} free days" if step.free_days != 1 else "1 free day"
    if step.kind == "discount_code" and step.discount is not None:
        d = step.discount
        off = (
            f"{d.percent_off}% off"
            if d.type == "percent"
            else f"{(d.amount_off_minor or 0) / 100:.2f} {(d.currency or '').upper()} off"
        )
        months = f" for {d.duration_months} months" if d.duration_months > 1 else ""
        return f"Discount code: {off}{months}"
    if step.kind == "badge":
        return "A badge"
    if step.kind == "role":
        return "A Discord role"
    return step.kind.replace("_", " ")


STATE_WORDS = {
    "granted": ("Granted", "good"),
    "pending": ("On its way", ""),
    "applying": ("On its way", ""),
    "waiting": ("On its way", ""),
    "waiting_membership": ("Waiting for your Whop membership", ""),
    "failed": ("Being retried", ""),
    "dead": ("Could not be delivered: an admin can retry it", "bad"),
    "reached": ("Reached before this reward existed", ""),
}


def reward_state(step: RewardStep) -> tuple[str, str]:
    """(words, tone) of where the reward stands."""
    if step.state == "ahead":
        levels = "level" if step.levels_to_go == 1 else "levels"
        return f"{step.levels_to_go} {levels} to go", ""
    return STATE_WORDS.get(step.state, (step.state, ""))
