"""Routes of reward rules (premium to change), the reward ledger and its dead letters, badges
(enterprise to define and award) and the level-up message, served by the rewards service.

Admin writes are audited in two steps (`Auditor.change`): a pending entry before the call to
rewards, completed with the outcome after it, so a crash in between loses no entry.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, PathParameter, QueryParameter

from wee5.rewards.v1 import rewards_pb2
from wee5_gateway.api.rewards import changes
from wee5_gateway.api.rewards.mappers import (
    REWARD_STATUSES,
    attempt_view,
    badge_view,
    member_badge_view,
    reward_page,
    reward_view,
    rule_view,
    settings_view,
)
from wee5_gateway.api.rewards.schemas import (
    BackfillBody,
    BackfillResult,
    BadgeAwarded,
    BadgeBody,
    BadgePage,
    BadgeView,
    MemberBadgePage,
    MemberRewardStanding,
    RewardAttemptView,
    RewardPage,
    RewardRuleBody,
    RewardRuleList,
    RewardRuleSaved,
    RewardSettingsBody,
    RewardSettingsView,
    RewardStatus,
    RewardView,
)
from wee5_gateway.api.rewards.standing import reward_standing
from wee5_gateway.api.xp.boards import PublicBoards, provide_boards
from wee5_gateway.api.xp.reads import member_standing
from wee5_gateway.core.access import Action, Role, requires
from wee5_gateway.core.audit import Auditor
from wee5_gateway.core.clients import Downstream
from wee5_gateway.core.deps import (
    ACCOUNTS_OR_KEYS,
    COMMUNITY,
    AccessDep,
    AuditorDep,
    DownstreamDep,
    EntitlementsDep,
)
from wee5_gateway.core.entitlements import Feature
from wee5_gateway.core.merge_patch import PATCH_DESCRIPTION, MergePatch, patch_body, patched
from wee5_gateway.core.openapi import body_example
from wee5_gateway.core.problems import Conflict, problem_responses

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
# A level in a path: what a protobuf int32 holds (larger is a 400, not a 500).
Level = Annotated[int, PathParameter(ge=0, le=2**31 - 1)]


class RewardRulesController(Controller):
    path = f"{COMMUNITY}/reward-rules"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.READ_REWARDS),
        operation_id="listRewardRules",
        summary="The community's level → reward rules (the defaults until it changes them)",
        description="One rule per level: free days, a discount code, a badge or a Discord role "
        "(admins, API keys with xp:admin).",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def list_rules(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> RewardRuleList:
        reply = await downstream.rewards.ListRewardRules(
            rewards_pb2.ListRewardRulesRequest(community_id=community_id)
        )
        return RewardRuleList(community_id, [rule_view(rule) for rule in reply.rules])

    @put(
        "/{level:int}",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="upsertRewardRule",
        summary="Create or replace the rule of a level (admins; premium plan; audited)",
        description=(
            "A rule added later does not reach back to members who passed its level already; "
            "POST /reward-rules/backfill grants it to them."
        ),
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def upsert_rule(
        self,
        community_id: FromPath[str],
        level: Level,
        data: Annotated[RewardRuleBody, body_example({"kind": "free_days", "free_days": 7})],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> RewardRuleSaved:
        return await changes.upsert_rule(downstream, entitlements, audit, community_id, level, data)

    @delete(
        "/{level:int}",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="deleteRewardRule",
        summary="Remove the rule of a level; rewards already earned are kept (premium; audited)",
        description="Later level-ups to that level earn nothing; rewards granted before stay "
        "granted.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def delete_rule(
        self,
        community_id: FromPath[str],
        level: Level,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> None:
        await changes.delete_rule(downstream, entitlements, audit, community_id, level)

    @post(
        "/backfill",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="backfillRewards",
        summary="Grant rules to members who passed their levels already, each reward once "
        "(premium; audited)",
        description="Members who reached a rule's level before the rule existed get its reward "
        "now, each at most once. `dry_run: true` only counts them. Premium; audited.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
        status_code=200,
    )
    async def backfill(
        self,
        community_id: FromPath[str],
        data: Annotated[BackfillBody, body_example({"dry_run": True})],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> BackfillResult:
        await entitlements.require_feature(community_id, Feature.REWARD_RULES)
        async with audit.change(
            "rewards.backfilled", target=f"reward_rule:{data.rule_id or 'all'}"
        ) as change:
            reply = await downstream.rewards.BackfillRewards(
                rewards_pb2.BackfillRewardsRequest(
                    community_id=community_id, rule_id=data.rule_id or "", dry_run=data.dry_run
                ),
                timeout=60,
            )
            result = BackfillResult(reply.created_count, reply.skipped_count, data.dry_run)
            if not data.dry_run:
                change.done(after={"created": result.created, "skipped": result.skipped})
            else:
                change.unchanged()
        return result


class RewardLedgerController(Controller):
    path = f"{COMMUNITY}/rewards"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.READ_REWARDS),
        operation_id="listRewards",
        summary="The community's reward ledger, newest first, by status and member (admins)",
        description="Every reward granted in the community with its delivery status (pending, "
        "granted, failed, dead…), filterable by status and member; paged with "
        "`cursor`.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def ledger(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        status: FromQuery[RewardStatus | None] = None,
        user_id: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> RewardPage:
        return await reward_page_of(downstream, community_id, status, user_id, cursor, limit)

    @get(
        "/dead",
        opt=requires(Action.READ_REWARDS),
        operation_id="listDeadRewards",
        summary="Rewards that failed every attempt (dead letters), for an admin to retry",
        description="Rewards that used up their retries; `POST …/rewards/{reward_id}/retry` puts "
        "one back in line.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def dead(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> RewardPage:
        return await reward_page_of(downstream, community_id, "dead", None, cursor, limit)

    @post(
        "/{reward_id:int}/retry",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="retryReward",
        summary="Put a dead, failed or waiting reward back in line with a new retry budget "
        "(admins; audited)",
        description="The reward gets a fresh retry budget and is delivered again at most once. 409"
        " for a reward that is not dead, failed or waiting.",
        responses=problem_responses(400, 401, 403, 404, 409, 503, 504),
        status_code=200,
    )
    async def retry(
        self,
        community_id: FromPath[str],
        reward_id: FromPath[int],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> RewardView:
        async with audit.change("reward.retried", target=f"reward:{reward_id}") as change:
            reply = await downstream.rewards.RetryReward(
                rewards_pb2.RetryRewardRequest(community_id=community_id, reward_id=str(reward_id))
            )
            change.done(after={"status": "pending"})
        return reward_view(reply.reward)

    @get(
        "/{reward_id:int}/attempts",
        opt=requires(Action.READ_REWARDS),
        operation_id="listRewardAttempts",
        summary="Every delivery attempt of a reward, oldest first (admins)",
        description="Each try to deliver the reward (e.g. the call to Whop), with its outcome and "
        "error, for finding out why a reward failed.",
        responses=problem_responses(400, 401, 403, 404, 503, 504),
    )
    async def attempts(
        self,
        community_id: FromPath[str],
        reward_id: FromPath[int],
        downstream: DownstreamDep,
    ) -> list[RewardAttemptView]:
        reply = await downstream.rewards.ListRewardAttempts(
            rewards_pb2.ListRewardAttemptsRequest(
                community_id=community_id, reward_id=str(reward_id)
            )
        )
        return [attempt_view(attempt) for attempt in reply.attempts]


async def reward_page_of(
    downstream: Downstream,
    community_id: str,
    status: str | None,
    user_id: str | None,
    cursor: str | None,
    limit: int,
) -> RewardPage:
    reply = await downstream.rewards.ListRewards(
        rewards_pb2.ListRewardsRequest(
            community_id=community_id,
            user_id=user_id or "",
            status=REWARD_STATUSES.value(status)
            if status
            else rewards_pb2.REWARD_STATUS_UNSPECIFIED,
            page_size=limit,
            page_token=cursor or "",
        )
    )
    return reward_page(reply)


class MemberRewardsController(Controller):
    path = f"{COMMUNITY}/members/{{user_id:str}}"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/rewards",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="listMemberRewards",
        summary="A member's rewards and their delivery state, newest first (discount codes "
        "only for the member and admins)",
        description="What the member earned at each level and where its delivery stands. A "
        "discount code is shown only to the member and admins.",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def member_rewards(
        self,
        community_id: FromPath[str],
        access: AccessDep,
        user_id: FromPath[str],
        downstream: DownstreamDep,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> RewardPage:
        page = await reward_page_of(downstream, community_id, None, user_id, cursor, limit)
        own = access.member_user_id == user_id
        if not own and (access.role is None or access.role < Role.ADMIN):
            # A discount code is redeemable by whoever holds it: only its member and admins
            # see it (API keys read it through the admin ledger, with `xp:admin`).
            for reward in page.rewards:
                if reward.discount is not None:
                    reward.discount.code = None
        return page

    @get(
        "/badges",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="listMemberBadges",
        summary="The badges a member holds",
        description="Each badge with when it was awarded (members of the community).",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def member_badges(
        self,
        community_id: FromPath[str],
        user_id: FromPath[str],
        downstream: DownstreamDep,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> MemberBadgePage:
        reply = await downstream.rewards.ListMemberBadges(
            rewards_pb2.ListMemberBadgesRequest(
                community_id=community_id,
                user_id=user_id,
                page_size=limit,
                page_token=cursor or "",
            )
        )
        return MemberBadgePage(
            member_badges=[member_badge_view(held) for held in reply.member_badges],
            next_cursor=reply.next_page_token or None,
        )


class MyRewardsController(Controller):
    path = f"{COMMUNITY}/members/me"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/reward-standing",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getMyRewardStanding",
        summary="The caller's way up: each level reward of the community, lowest first, and "
        "whether they have it (its delivery state) or how many levels are left",
        description="The caller is the member their account (or Whop sign-in) is linked to in "
        "this community; only their own standing is ever shown.",
        responses=problem_responses(400, 401, 403, 409, 503, 504),
    )
    async def my_standing(
        self, community_id: FromPath[str], access: AccessDep, downstream: DownstreamDep
    ) -> MemberRewardStanding:
        user_id = access.member_user_id
        if not user_id:
            raise Conflict(
                "the caller is not linked to a member of this community, so there is no "
                "member whose rewards to show"
            )
        standing = await member_standing(downstream, community_id, user_id)
        return await reward_standing(downstream, community_id, user_id, standing["level"])


class BadgesController(Controller):
    path = f"{COMMUNITY}/badges"
    tags = ["badges"]
    security = ACCOUNTS_OR_KEYS
    dependencies = {"boards": Provide(provide_boards, sync_to_thread=False)}

    @get(
        "/",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="listBadges",
        summary="The community's badges",
        description="Every badge with its definition and criteria: a level, an XP total, an "
        "activity count, a streak, a rank, or manual (awarded by hand).",
        responses=problem_responses(400, 401, 403, 503, 504),
    )
    async def list_badges(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> BadgePage:
        reply = await downstream.rewards.ListBadges(
            rewards_pb2.ListBadgesRequest(
                community_id=community_id, page_size=limit, page_token=cursor or ""
            )
        )
        return BadgePage(
            badges=[badge_view(badge) for badge in reply.badges],
            next_cursor=reply.next_page_token or None,
        )

    @post(
        "/",
        opt=requires(Action.MANAGE_BADGES),
        operation_id="createBadge",
        summary="Define a badge (admins; enterprise plan; audited)",
        description="A badge and its criteria (`level`, `xp`, `activity_count`, `streak`, `rank` "
        "with a threshold, or `manual`). Enterprise (402 otherwise); audited.",
        responses=problem_responses(400, 401, 402, 403, 409, 503, 504),
    )
    async def create_badge(
        self,
        community_id: FromPath[str],
        data: Annotated[
            BadgeBody,
            body_example(
                {
                    "name": "Chatterbox",
                    "criteria": {
                        "kind": "activity_count",
                        "threshold": 500,
                        "activity_kind": "message",
                    },
                    "description": "500 messages",
                }
            ),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> BadgeView:
        return await changes.create_badge(downstream, entitlements, audit, community_id, data)

    @put(
        "/{badge_id:int}",
        opt=requires(Action.MANAGE_BADGES),
        operation_id="updateBadge",
        summary="Replace a badge's definition (enterprise; audited)",
        description="The whole definition is replaced; members who hold it keep it. Enterprise; "
        "audited.",
        responses=problem_responses(400, 401, 402, 403, 404, 409, 503, 504),
    )
    async def update_badge(
        self,
        community_id: FromPath[str],
        badge_id: FromPath[int],
        data: Annotated[
            BadgeBody,
            body_example(
                {
                    "name": "Chatterbox",
                    "criteria": {
                        "kind": "activity_count",
                        "threshold": 500,
                        "activity_kind": "message",
                    },
                    "description": "500 messages",
                }
            ),
        ],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> BadgeView:
        return await changes.update_badge(
            downstream, entitlements, audit, community_id, badge_id, data
        )

    @delete(
        "/{badge_id:int}",
        opt=requires(Action.MANAGE_BADGES),
        operation_id="deleteBadge",
        summary="Delete a badge and take it from every member (enterprise; audited)",
        description="Removes the badge and every member's copy of it. Enterprise; audited.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def delete_badge(
        self,
        community_id: FromPath[str],
        badge_id: FromPath[int],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
    ) -> None:
        await entitlements.require_feature(community_id, Feature.BADGES)
        async with audit.change("badge.deleted", target=f"badge:{badge_id}") as change:
            await downstream.rewards.DeleteBadge(
                rewards_pb2.DeleteBadgeRequest(community_id=community_id, badge_id=str(badge_id))
            )
            change.done()

    @put(
        "/{badge_id:int}/members/{user_id:str}",
        opt=requires(Action.MANAGE_BADGES),
        operation_id="awardBadge",
        summary="Give a member a badge by hand; also restores a revoked one (enterprise; audited)",
        description="The member holds the badge from now on; awarding it again changes nothing. "
        "Enterprise; audited.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def award(
        self,
        community_id: FromPath[str],
        badge_id: FromPath[int],
        user_id: FromPath[str],
        access: AccessDep,
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
        boards: NamedDependency[PublicBoards],
    ) -> BadgeAwarded:
        awarded = await changes.award_badge(
            downstream, entitlements, audit, access.principal, community_id, badge_id, user_id
        )
        boards.changed(community_id)  # the member's card shows it at once
        return awarded

    @delete(
        "/{badge_id:int}/members/{user_id:str}",
        opt=requires(Action.MANAGE_BADGES),
        operation_id="revokeBadge",
        summary="Take a badge from a member; it is not earned back automatically "
        "(enterprise; audited)",
        description="The badge leaves the member's card at once; a badge earned by criteria is not"
        " awarded again automatically. Enterprise; audited.",
        responses=problem_responses(400, 401, 402, 403, 404, 503, 504),
    )
    async def revoke(
        self,
        community_id: FromPath[str],
        badge_id: FromPath[int],
        user_id: FromPath[str],
        downstream: DownstreamDep,
        entitlements: EntitlementsDep,
        audit: AuditorDep,
        boards: NamedDependency[PublicBoards],
    ) -> None:
        await entitlements.require_feature(community_id, Feature.BADGES)
        async with audit.change("badge.revoked", target=f"member:{user_id}") as change:
            reply = await downstream.rewards.RevokeBadge(
                rewards_pb2.RevokeBadgeRequest(
                    community_id=community_id, badge_id=str(badge_id), user_id=user_id
                )
            )
            if reply.revoked:
                change.done(before={"badge_id": str(badge_id)})
            else:
                change.unchanged()
        boards.changed(community_id)  # the member's card drops it at once


class RewardSettingsController(Controller):
    path = f"{COMMUNITY}/reward-settings"
    tags = ["rewards"]
    security = ACCOUNTS_OR_KEYS

    @get(
        "/",
        opt=requires(Action.READ_COMMUNITY),
        operation_id="getRewardSettings",
        summary="The level-up message template (for clients to display) and Discord guild",
        description="The template of the level-up announcement and the variables it may use, and "
        "the Discord guild roles are given in (members, API keys).",
        responses=problem_responses(401, 403, 503, 504),
    )
    async def get_settings(
        self,
        community_id: FromPath[str],
        downstream: DownstreamDep,
    ) -> RewardSettingsView:
        return await _read_settings(downstream, community_id)

    @put(
        "/",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="updateRewardSettings",
        summary="Set the level-up message template ({member}, {level}, {reward}, {rank}) "
        "and the Discord bot's introductions channel, welcome and subscription role "
        "(admins; audited)",
        description="Replaces the template (left out: the default message), the "
        "introductions channel, the welcome channel and templates and the subscription role "
        "(left out: none, the default welcome, no DM, none). The subscription role is a role "
        "of the bound server that members with an active Whop membership hold and lose when "
        "it ends (the bot needs Manage Roles, its role above this one). The Discord guild "
        "is not set here: it is bound by installing the bot (`POST …/discord-guild/install`) "
        "or by a platform admin (`PUT …/discord-guild`); `discord_guild_id` may be left out "
        "or repeat the bound guild, any other value is a 403.",
        responses=problem_responses(400, 401, 403, 422, 503, 504),
    )
    async def update_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[
            RewardSettingsBody,
            body_example({"level_up_template": "GG {member}, you reached level {level}! {reward}"}),
        ],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> RewardSettingsView:
        return await _write_settings(downstream, audit, community_id, data)

    @patch(
        "/",
        opt=requires(Action.MANAGE_REWARDS),
        operation_id="patchRewardSettings",
        summary="Change the level-up message template (admins; audited); the Discord guild "
        "stays as bound",
        description=f'{PATCH_DESCRIPTION} `{{"level_up_template": null}}` goes back to the '
        "default message.",
        responses=problem_responses(400, 401, 403, 422, 503, 504),
    )
    async def patch_settings(
        self,
        community_id: FromPath[str],
        data: Annotated[
            MergePatch, patch_body({"level_up_template": "{member} reached level {level}!"})
        ],
        downstream: DownstreamDep,
        audit: AuditorDep,
    ) -> RewardSettingsView:
        current = await _read_settings(downstream, community_id)
        body = patched(current, data, RewardSettingsBody)
        return await _write_settings(downstream, audit, community_id, body)


async def _read_settings(downstream: Downstream, community_id: str) -> RewardSettingsView:
    reply = await downstream.rewards.GetRewardSettings(
        rewards_pb2.GetRewardSettingsRequest(community_id=community_id)
    )
    return settings_view(reply.settings)


async def _write_settings(
    downstream: Downstream, audit: Auditor, community_id: str, data: RewardSettingsBody
) -> RewardSettingsView:
    """Replaces the community's reward settings, audited (PUT, and PATCH once merged)."""
    async with audit.change(
        "reward_settings.changed", target=f"community:{community_id}"
    ) as change:
        reply = await downstream.rewards.UpdateRewardSettings(
            rewards_pb2.UpdateRewardSettingsRequest(
                community_id=community_id,
                level_up_template=data.level_up_template,
                discord_guild_id=data.discord_guild_id or "",
                discord_intro_channel_id=data.discord_intro_channel_id or "",
                discord_welcome_channel_id=data.discord_welcome_channel_id or "",
                discord_welcome_template=data.discord_welcome_template,
                discord_welcome_dm_template=data.discord_welcome_dm_template,
                discord_subscription_role_id=data.discord_subscription_role_id or "",
            )
        )
        view = settings_view(reply.settings)
        change.done(
            after={
                "level_up_template": view.level_up_template,
                "guild": view.discord_guild_id,
                "intro_channel": view.discord_intro_channel_id,
                "welcome_channel": view.discord_welcome_channel_id,
                "subscription_role": view.discord_subscription_role_id,
            }
        )
    return view
